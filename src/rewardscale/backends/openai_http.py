"""Any OpenAI-compatible chat server: vLLM, SGLang, llama.cpp server, Ollama, or the OpenAI API.

Async with bounded concurrency, retries with exponential backoff and jitter on 429/5xx/timeouts,
connection errors and 200 replies that are not a chat completion (truncated JSON, an HTML page),
and several base URLs used round-robin (one vLLM server per GPU, say). Each attempt is bounded as a
whole (`timeout`), so a body that trickles in cannot hold a call; an enclosing `deadline(...)` (the
server's per-call deadline) cancels the upstream requests still running when it passes.

The HTTP client is aiohttp (http and https; keep-alive connections, a pool sized to `concurrency`).
httpx/httpcore cost about 2.5-3.7 ms of CPU per request here (pool scans on every state change,
anyio readability checks on each reuse, a failed `sniffio` import per lock), enough for a fleet
answering in 10 ms to wait on the client; aiohttp's C parser costs a fraction of that
(benchmarks/fleet_orchestration.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass_environment

import aiohttp
from yarl import URL

from ..errors import RewardscaleError
from ..types import Sampling
from ..verdict import (
    VERDICT_CONSTRAINTS,
    parse_logprobs,
    strip_prefix,
    verdict_grammar,
    verdict_regex,
)
from .base import (
    BackendError,
    Capabilities,
    Completion,
    Deadline,
    GenerationRequest,
    Progress,
    current_deadline,
    failed,
)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
CANCELLED = "cancelled: the caller's deadline passed before the judge answered"
T = TypeVar("T")


class BadReply(RewardscaleError, ValueError):
    """A 200 reply whose body is not a chat completion; retried like a 5xx."""


def check_reply(data: Any) -> dict[str, Any]:
    """`data` if it is a chat completion (an object whose non-empty `choices` are objects with an
    object `message` holding string or null `content`); else BadReply saying what is wrong."""
    if not isinstance(data, dict):
        raise BadReply(f"the body is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BadReply("no 'choices' list" if not isinstance(choices, list) else "'choices' is empty")
    for i, c in enumerate(choices):
        if not isinstance(c, dict):
            raise BadReply(f"choices[{i}] is a {type(c).__name__}, not an object")
        message = c.get("message", {})
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), (str, type(None))):
            raise BadReply(f"choices[{i}].message is not an object with string content")
        if not isinstance(c.get("index") or 0, int) or not isinstance(c.get("logprobs") or {}, dict):
            raise BadReply(f"choices[{i}] has a non-integer index or malformed logprobs")
    if not isinstance(data.get("usage") or {}, dict):
        raise BadReply("'usage' is not an object")
    return data


@dataclass
class UpstreamStats:
    """What the upstream did, for /metrics: HTTP attempts, retries and why, calls given up on,
    requests cancelled by a deadline. Thread-safe (the server may run batches side by side)."""

    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)  # reason -> retries
    gave_up: int = 0
    cancelled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, name: str, reason: str | None = None, n: int = 1) -> None:
        with self._lock:
            if name == "retries":
                self.retries[reason or "other"] = self.retries.get(reason or "other", 0) + n
            else:
                setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "attempts": self.attempts,
                "retries": dict(self.retries),
                "gave_up": self.gave_up,
                "cancelled": self.cancelled,
            }


async def until_deadline(
    coros: Sequence[Awaitable[T]], scope: Deadline | None, on_cancel: Callable[[int], T]
) -> list[T]:
    """Await every coroutine; once `scope` passes, cancel those still running and put
    `on_cancel(i)` in their place (the rest keep their results)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if scope is None:
        return list(await asyncio.gather(*tasks))
    pending = set(tasks)
    while pending:
        left = scope.left()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(left, 0.25))
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending)
    return [on_cancel(i) if t.cancelled() else t.result() for i, t in enumerate(tasks)]


def encode(body: dict[str, Any]) -> bytes:
    """A request body as JSON bytes: compact, UTF-8, no NaN (what httpx's `json=` wrote)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


Proxy = tuple[URL | None, aiohttp.BasicAuth | None]


def env_proxy(url: str) -> Proxy:
    """The proxy that the environment names for `url` (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY)
    and its credentials, (None, None) for none. What aiohttp's `trust_env=True` finds, looked up once
    per base URL: `trust_env` looks the proxy up on a worker thread for every request, and ~/.netrc
    too (whose entry for the host would then clash with the API key's Authorization header)."""
    parts = urlsplit(url)
    proxies = getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    host = parts.hostname or ""
    if not proxy or proxy_bypass_environment(f"{host}:{parts.port}" if parts.port else host, proxies):
        return None, None
    proxy_url = URL(proxy if "://" in proxy else f"http://{proxy}")
    if proxy_url.scheme != "http":
        shown = proxy_url.with_user(None)
        raise BackendError(f"the proxy {shown} for {url} is not an http:// proxy (aiohttp needs one)")
    return proxy_url.with_user(None), aiohttp.BasicAuth.from_url(proxy_url)


def _text(content: bytes) -> str:
    """A reply body as text, for error messages."""
    return content.decode("utf-8", "replace")


class OpenAIBackend:
    """`POST {base_url}/chat/completions` with `n` completions per prompt and a seed.

    Servers that return fewer than `n` choices (Ollama ignores `n`) are asked again for the rest,
    one completion at a time with derived seeds.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        api_key: str | None = None,
        concurrency: int = 16,
        max_retries: int = 5,
        timeout: float = 600.0,
        backoff: float = 0.5,
        extra_body: dict[str, Any] | None = None,
        verdict_constraint: str = "none",
    ):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise BackendError("no base URL given for the OpenAI-compatible backend")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.model = model
        self.model_id = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.extra_body = extra_body or {}
        if concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, not {concurrency}")
        self.proxies = [env_proxy(u) for u in self.base_urls]
        self.stats = UpstreamStats()
        self._next_url = itertools.cycle(range(len(self.base_urls)))
        if verdict_constraint not in VERDICT_CONSTRAINTS:
            raise BackendError(
                f"unknown verdict constraint {verdict_constraint!r}; choose one of: {', '.join(VERDICT_CONSTRAINTS)}"
            )
        # How this server constrains a forced verdict; "none": it cannot (GRM retries instead).
        self.verdict_constraint = verdict_constraint

    @property
    def capabilities(self) -> Capabilities:
        """Constrained generations and verdicts as the server spells them (none with
        `verdict_constraint` "none"); `concurrency` requests in flight; each call runs its own
        event loop and HTTP client, so the server may run batches side by side. A named server
        kind (llama.cpp server, vLLM, SGLang) also continues an assistant prefix; plain OpenAI-style
        APIs do not."""
        constrained = self.verdict_constraint != "none"
        return Capabilities(
            constrained_generation=constrained,
            verdicts=constrained,
            verdict_constraint=self.verdict_constraint,
            concurrency=self.concurrency,
            thread_safe=True,
            reports_each=True,
            continuation=constrained,
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[aiohttp.ClientSession]:
        """One HTTP client for one call (its event loop): keep-alive connections shared by every
        request of the call, at most `concurrency` of them (as many as requests in flight); each
        attempt bounded as a whole, body included (`ClientTimeout(total=...)`)."""
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"Content-Type": "application/json", **self._headers()},
        ) as session:
            yield session

    async def _attempt(self, session: aiohttp.ClientSession, i: int, url: str, payload: bytes) -> tuple[int, bytes]:
        """One POST to base URL `i`: (status, reply body). Cancelling it closes its connection."""
        proxy, proxy_auth = self.proxies[i]
        async with session.post(url, data=payload, proxy=proxy, proxy_auth=proxy_auth) as r:
            return r.status, await r.read()

    def _scrub(self, text: str) -> str:
        """`text` without the API key (an upstream may echo the request's headers)."""
        return text.replace(self.api_key, "***") if self.api_key else text

    async def _post(
        self, session: aiohttp.ClientSession, sem: asyncio.Semaphore, body: dict[str, Any]
    ) -> dict[str, Any]:
        """POST with retries; rotates base URLs between attempts. Returns a checked chat completion
        (`check_reply`); raises BackendError at the end. `sem` bounds the requests in flight: it is
        held for each HTTP attempt only, not while a reply is parsed or a retry waits its backoff
        (a request sleeping before its retry leaves its place to another one)."""
        last = ""
        refused = 0
        payload = encode(body)
        for attempt in range(self.max_retries + 1):
            i = next(self._next_url)
            url = self.base_urls[i] + "/chat/completions"
            self.stats.count("attempts")
            reason = "transport"
            try:
                async with sem:
                    status, content = await self._attempt(session, i, url, payload)
                if status == 200:
                    try:
                        return check_reply(json.loads(content))
                    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, BadReply
                        last = f"malformed 200 reply from {url} ({e}): {_text(content)[:200]!r}"
                        reason = "malformed"
                else:
                    last = f"HTTP {status} from {url}: {_text(content)[:300]}"
                    if status not in RETRY_STATUS:
                        raise BackendError(self._scrub(last))
                    reason = f"http_{status}"
            except aiohttp.ClientConnectorError as e:
                # Nothing listens there: retry once per URL, not with the full backoff budget.
                last = f"cannot connect to {url}: {e}"
                reason = "connect"
                refused += 1
                if refused >= 2 * len(self.base_urls):
                    break
            except asyncio.TimeoutError:  # ClientTimeout's total (aiohttp's ServerTimeoutError too)
                last = f"no complete reply from {url} within {self.timeout:g}s"
                reason = "timeout"
            except aiohttp.ClientError as e:  # disconnected, a broken body, not an HTTP reply
                last = f"{type(e).__name__} talking to {url}: {e}"
                reason = "transport"
            if attempt < self.max_retries:
                self.stats.count("retries", reason)
                await asyncio.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        self.stats.count("gave_up")
        raise BackendError(self._scrub(f"gave up after {attempt + 1} attempts: {last}"))

    async def _complete(
        self, session: aiohttp.ClientSession, sem: asyncio.Semaphore, req: GenerationRequest, sampling: Sampling
    ) -> list[Completion]:
        if req.verdict is not None:
            return [await self._verdict(session, sem, req, sampling)]
        out: list[Completion] = []
        while len(out) < req.n:
            want = req.n - len(out)
            body = {
                "model": self.model,
                "messages": req.chat(),
                "n": want,
                "seed": req.seed + len(out),
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_tokens": sampling.max_tokens,
                **self.extra_body,
            }
            if req.grammar is not None:
                body.update(self._grammar_fields(req.grammar))
            body.update(self._continue_fields(req))
            data = await self._post(session, sem, body)
            choices = sorted(data["choices"], key=lambda c: c.get("index") or 0)
            tokens = (data.get("usage") or {}).get("completion_tokens", 0)
            usage = tokens // len(choices) if isinstance(tokens, int) else 0
            for c in choices[:want]:
                text = strip_prefix((c.get("message") or {}).get("content") or "", req.prefix or "")
                out.append(Completion(text=text, finish_reason=c.get("finish_reason"), tokens=usage))
        return out

    def _grammar_fields(self, grammar: str) -> dict[str, Any]:
        """The request fields that constrain a whole generation by a GBNF grammar, in this
        server's spelling: llama.cpp server `grammar`; vLLM `structured_outputs.grammar` (and the
        older `guided_grammar`); SGLang `ebnf`."""
        if self.verdict_constraint == "grammar":
            return {"grammar": grammar}
        if self.verdict_constraint == "vllm":
            return {"structured_outputs": {"grammar": grammar}, "guided_grammar": grammar}
        if self.verdict_constraint == "sglang":
            return {"ebnf": grammar}
        raise BackendError("this server cannot constrain a generation (verdict_constraint 'none')")

    def _continue_fields(self, req: GenerationRequest) -> dict[str, Any]:
        """How this server is told to continue the final assistant message: vLLM / SGLang
        `continue_final_message`; llama.cpp server continues one by itself."""
        if req.prefix is None or self.verdict_constraint == "grammar":
            return {}
        return {"continue_final_message": True, "add_generation_prompt": False}

    def _verdict_body(self, req: GenerationRequest, sampling: Sampling) -> dict[str, Any]:
        """Continue the assistant prefix (`continue_final_message`, vLLM/SGLang; llama.cpp server
        continues a final assistant message by itself) under the server's verdict constraint."""
        n = req.verdict or 1
        body: dict[str, Any] = {
            "model": self.model,
            "messages": req.chat(),
            "n": 1,
            "seed": req.seed,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": 8 * n + 4,
            **self.extra_body,
        }
        body.update(self._continue_fields(req))
        if self.verdict_constraint == "grammar":  # llama.cpp server
            body["grammar"] = verdict_grammar(n)
        else:
            regex = verdict_regex(n)
            if self.verdict_constraint == "vllm":  # new and older vLLM spellings
                body["structured_outputs"] = {"regex": regex}
                body["guided_regex"] = regex
            elif self.verdict_constraint == "sglang":
                body["regex"] = regex
        if req.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = req.top_logprobs
        return body

    async def _verdict(
        self, session: aiohttp.ClientSession, sem: asyncio.Semaphore, req: GenerationRequest, sampling: Sampling
    ) -> Completion:
        """A verdict continuation; a failed one comes back as an error completion (its sample
        keeps its text), never as the "every request failed" error of a call."""
        try:
            data = await self._post(session, sem, self._verdict_body(req, sampling))
        except BackendError as e:
            return Completion(text="", finish_reason="error", error=str(e))
        c = data["choices"][0]
        text = strip_prefix((c.get("message") or {}).get("content") or "", req.prefix or "")
        logprobs = parse_logprobs((c.get("logprobs") or {}).get("content"))
        tokens = (data.get("usage") or {}).get("completion_tokens")
        tokens = tokens if isinstance(tokens, int) else len(logprobs or ())
        return Completion(text=text, finish_reason=c.get("finish_reason"), tokens=tokens, logprobs=logprobs)

    async def agenerate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: Sampling,
        progress: Progress | None = None,
        on_done: Callable[[int, list[Completion]], None] | None = None,
    ) -> list[list[Completion]]:
        """Async form of `generate`, for callers that already run an event loop (the server).
        `on_done(i, completions)` is called as soon as request i is answered (on the loop)."""
        sem = asyncio.Semaphore(self.concurrency)
        async with self._client() as session:

            async def one(i: int, req: GenerationRequest) -> list[Completion]:
                try:
                    res = await self._complete(session, sem, req, sampling)
                except BackendError as e:
                    res = failed(req.n, str(e))
                if on_done:
                    on_done(i, res)
                if progress:
                    progress(req.n)
                return res

            def cancelled(i: int) -> list[Completion]:
                self.stats.count("cancelled")
                return failed(requests[i].n, CANCELLED)

            results = await until_deadline([one(i, r) for i, r in enumerate(requests)], current_deadline(), cancelled)
        # the call fails as a whole when every sample request failed (verdicts fail alone)
        samples = [c for r, c in zip(requests, results) if r.verdict is None]
        errors = [c[0].error for c in samples if c and c[0].error]
        if samples and len(errors) == len(samples):
            raise BackendError(f"every request failed; first error: {errors[0]}")
        return list(results)

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: Sampling, progress: Progress | None = None
    ) -> list[list[Completion]]:
        return self._run(self.agenerate(requests, sampling, progress))

    def generate_each(
        self,
        requests: Sequence[GenerationRequest],
        sampling: Sampling,
        on_done: Callable[[int, list[Completion]], None],
    ) -> list[list[Completion]]:
        """`generate`, calling `on_done(i, completions)` as each request is answered: the sample
        store commits each job as it finishes while every request shares one client and its
        keep-alive connections (`rewardscale.stored.stored_generate`)."""
        return self._run(self.agenerate(requests, sampling, None, on_done))

    @staticmethod
    def _run(coro):
        """Run a coroutine to completion, also when called from inside a running event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside a running loop: run ours on a helper thread.
        box: dict[str, Any] = {}
        ctx = contextvars.copy_context()  # the caller's deadline goes with it
        t = threading.Thread(target=lambda: box.update(r=ctx.run(asyncio.run, coro)), daemon=True)
        t.start()
        t.join()
        if "r" not in box:
            raise BackendError("generation thread failed")
        return box["r"]

    def close(self) -> None:
        pass
