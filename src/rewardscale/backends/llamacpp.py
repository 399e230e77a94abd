"""Embedded CPU backend: llama.cpp's own server engine in process, via `xllamacpp`.

Why xllamacpp (measured, see benchmarks/bench_throughput.py and README): it ships a prebuilt
wheel (seconds to install, no compiler), and it runs llama.cpp's server loop in process, with
parallel slots, continuous batching and `n` child tasks that copy a parent's prefilled KV cache
into their slots. So k samples of one prompt pay for one prefill, each then stays in its slot
for its verdict pass, and all prompts of a call decode together in one batch. The prefix that a
call's prompts share is prefilled once and copied into the slots, and no more samples are in
flight than there are slots (`slots.py`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .. import models
from ..types import Sampling
from ..verdict import parse_logprobs, strip_prefix, verdict_grammar
from . import engine_info
from .base import BackendError, Capabilities, Completion, GenerationRequest, MissingExtra, Progress, failed
from .slots import SlotBudget, shared_prefix

log = logging.getLogger("rewardscale.llamacpp")

# How long close() waits for the engine's task loop to answer before giving up on destroying it.
CLOSE_BARRIER_S = 30.0


class LlamaCppBackend:
    """Generate with a GGUF model on the CPU (or GPU where the wheel supports it).

    `parallel` is the number of sequences decoded together (llama.cpp slots); `ctx_per_slot`
    bounds prompt + completion length per sequence. `lora` lists GGUF LoRA adapters (path, scale)
    applied to the model at load time (e.g. the SPCT-trained judge's adapter).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        parallel: int = 8,
        ctx_per_slot: int = engine_info.CTX_PER_SLOT,
        threads: int | None = None,
        model_id: str | None = None,
        verbose: bool = False,
        lora: Sequence[tuple[str | os.PathLike, float]] = (),
    ):
        try:
            import xllamacpp as xlc
        except ImportError as e:  # pragma: no cover - a core dependency
            raise MissingExtra("xllamacpp", "embedded") from e
        path = Path(model_path)
        if not path.is_file():
            raise BackendError(f"no GGUF model at {path}")
        self.parallel = parallel
        p = xlc.CommonParams()
        p.model.path = str(path)
        adapters = []
        for adapter, scale in lora:
            if not Path(adapter).is_file():
                raise BackendError(f"no GGUF LoRA adapter at {adapter}")
            adapters.append(xlc.CommonAdapterLoraInfo(path=str(adapter), scale=float(scale)))
        p.lora_adapters = adapters
        self.lora = [(str(a), float(s)) for a, s in lora]
        # without an id from the caller, adapters are part of it (models.lora_model_id)
        self.model_id = model_id or (models.lora_model_id(path.name, lora) if lora else path.name)
        p.n_parallel = parallel
        p.n_ctx = parallel * ctx_per_slot
        # One KV stream per slot (llama.cpp copies a prompt's prefill into its n children's streams
        # all the same). A unified pool made 8 different prompts 1.64x slower on 2 cores (idle
        # slots lost their cached template, and attention runs over every slot's cells):
        # benchmarks/kv_layout.py. A sequence then holds at most ctx_per_slot tokens.
        p.kv_unified = False
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads or engine_info.default_threads()
        p.warmup = False
        # /metrics goes through the engine's task loop (disabled, it answers at once without it):
        # close() uses it as a barrier that proves the loop runs before the engine is destroyed.
        p.endpoint_metrics = True
        p.verbosity = 0 if not verbose else 3
        try:
            self._server = xlc.Server(p)
        except Exception as e:  # noqa: BLE001 - llama.cpp raises plain exceptions
            raise BackendError(f"llama.cpp could not load {path}: {e}") from e
        self._init_slots()
        if log.isEnabledFor(logging.INFO):  # what it chose and why (as `rewardscale models` says)
            for line in engine_info.describe(parallel, threads, ctx_per_slot):
                log.info(line)

    @classmethod
    def on_engine(cls, server: Any, parallel: int, model_id: str) -> LlamaCppBackend:
        """Wrap an engine built elsewhere (an `xllamacpp.Server` configured by hand, or a fake in
        tests) with `parallel` slots."""
        backend = cls.__new__(cls)
        backend.parallel, backend.model_id, backend.lora, backend._server = parallel, model_id, [], server
        backend._init_slots()
        return backend

    def _init_slots(self) -> None:
        self._budget = SlotBudget(self.parallel)
        self._warm_lock = threading.Lock()
        self._warmed: list[dict[str, str]] | None = None  # the shared prefix the slots were last given

    def _complete(self, req: GenerationRequest, sampling: Sampling) -> list[Completion]:
        """A request's completions, taking a slot of the budget for each sample in flight."""
        if req.verdict is not None:
            self._budget.take(1)
            try:
                return [self._verdict(req, sampling)]
            finally:
                self._budget.give(1)
        seeds = [(req.seed + i) % 2**32 for i in range(req.n)]
        out: list[Completion] = []
        for lo in range(0, req.n, self.parallel):  # at most one engine's worth of slots at a time
            out += self._samples(req, sampling, seeds[lo : lo + self.parallel])
        return out

    def _samples(self, req: GenerationRequest, sampling: Sampling, seeds: list[int]) -> list[Completion]:
        """Samples of `req`, one per seed, as tasks of their own in as many slots.

        With more than one, a first call of children that decode one token prefills the prompt
        once and copies it into the slots; then each sample runs as a parent task in one of them.
        llama.cpp keeps a parent's generated tokens in its slot's cache but not a child's, so only
        thus does a verdict pass (forced verdicts, expected scores) find every sample in its slot
        instead of prefilling it again (~3.6 s a sample on 2 cores). Child i of `n` draws with
        seed + i: the seeds are those of the children the engine would have drawn.
        """
        self._budget.take(len(seeds))
        if len(seeds) > 1:
            fan_out = dict(self._body(req, sampling, seeds[0]), n=len(seeds), max_tokens=1)
            fan_out.pop("logprobs")
            try:
                reply = self._server.handle_chat_completions(fan_out)
            except BaseException:
                self._budget.give(len(seeds))
                raise
            if not isinstance(reply, dict) or "choices" not in reply:
                self._budget.give(len(seeds))
                return failed(len(seeds), self._error(reply))

        def one(seed: int) -> list[Completion]:
            try:
                return self._sample(req, sampling, seed)
            finally:
                self._budget.give(1)

        if len(seeds) == 1:
            return one(seeds[0])
        with ThreadPoolExecutor(max_workers=len(seeds), thread_name_prefix="llamacpp-sample") as pool:
            return [c for part in pool.map(one, seeds) for c in part]

    def _share_prefix(self, requests: Sequence[GenerationRequest]) -> None:
        """Prefill the prefix that the call's prompts share once and copy it into as many slots as
        the call fills (children of one prompt, as for k samples), unless the slots were last given
        this very prefix: otherwise each slot that a new prompt lands in prefills it again (the
        GRM's ~500-token template: ~6 s a slot on 2 cores). Only a speed-up: a failure is logged."""
        samples = [r for r in requests if r.verdict is None]
        prefix = shared_prefix([r.chat() for r in samples])
        if prefix is None:
            return
        with self._warm_lock:
            if prefix == self._warmed:
                return
            n = min(self.parallel, sum(r.n for r in samples))
            self._budget.take(n)  # every slot it copies into is one no sample is using
            try:
                body = {"messages": prefix, "n": n, "max_tokens": 1, "seed": 0, "temperature": 0.0}
                reply = self._server.handle_chat_completions(body)
            finally:
                self._budget.give(n)
            if isinstance(reply, dict) and "choices" in reply:
                self._warmed = prefix
            else:
                log.debug("sharing the prompts' prefix failed: %s", self._error(reply))

    def _body(self, req: GenerationRequest, sampling: Sampling, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": req.chat(),
            "n": 1,
            "seed": seed,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            # per-token logprobs give the completion's token count at no measurable cost
            "logprobs": True,
        }
        if req.grammar is not None:  # constrained full output (GBNF)
            body["grammar"] = req.grammar
        return body

    def _sample(self, req: GenerationRequest, sampling: Sampling, seed: int) -> list[Completion]:
        """One completion of `req`, drawn with `seed`, as a task of its own."""
        out = self._server.handle_chat_completions(self._body(req, sampling, seed))
        if not isinstance(out, dict) or not out.get("choices"):
            return failed(1, self._error(out))
        c = out["choices"][0]
        tokens = len((c.get("logprobs") or {}).get("content") or ()) or out.get("usage", {}).get("completion_tokens", 0)
        text = strip_prefix(c.get("message", {}).get("content") or "", req.prefix or "")
        return [Completion(text=text, finish_reason=c.get("finish_reason"), tokens=tokens)]

    def _error(self, out: Any) -> str:
        """llama.cpp's error reply as one line; a prompt too long for a slot names the setting."""
        error = out.get("error") if isinstance(out, dict) else None
        if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
            return (
                f"llama.cpp error: the prompt ({error.get('n_prompt_tokens')} tokens) does not fit a slot's "
                f"{error.get('n_ctx')}-token context; raise --ctx-per-slot (BackendConfig.ctx_per_slot)"
            )
        return f"llama.cpp error: {str(out)[:300]}"

    @property
    def capabilities(self) -> Capabilities:
        """GBNF for whole generations and verdicts; `parallel` slots; the engine is a server, so
        calls from several threads share its slots."""
        return Capabilities(
            constrained_generation=True,
            verdicts=True,
            verdict_constraint="grammar",
            slots=self.parallel,
            concurrency=self.parallel,
            thread_safe=True,
            continuation=True,
        )

    def _verdict(self, req: GenerationRequest, sampling: Sampling) -> Completion:
        """Continue the sample's text (an assistant prefill ending in `Scores: \\boxed{`) under a
        GBNF grammar that admits only a verdict for `req.verdict` responses; the slot's prompt
        cache makes the shared prefix cheap."""
        n, prefix = req.verdict or 1, req.prefix or ""
        body: dict[str, Any] = {
            "messages": req.chat(),
            "grammar": verdict_grammar(n),
            "seed": req.seed,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": 8 * n + 4,
        }
        if req.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = req.top_logprobs
        out = self._server.handle_chat_completions(body)
        if not isinstance(out, dict) or not out.get("choices"):
            return Completion(text="", finish_reason="error", error=self._error(out))
        choice = out["choices"][0]
        text = strip_prefix(choice.get("message", {}).get("content") or "", prefix)
        logprobs = parse_logprobs((choice.get("logprobs") or {}).get("content"))
        tokens = (out.get("usage") or {}).get("completion_tokens") or len(logprobs or ())
        return Completion(text=text, finish_reason=choice.get("finish_reason"), tokens=int(tokens), logprobs=logprobs)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: Sampling,
        progress: Progress | None = None,
    ) -> list[list[Completion]]:
        """All prompts are submitted at once; llama.cpp batches their sequences over its slots.
        A verdict request (`GenerationRequest.verdict`) is decoded under its GBNF verdict grammar."""
        results: list[list[Completion] | None] = [None] * len(requests)
        if not requests:
            return []
        self._share_prefix(requests)
        # One waiting thread per in-flight prompt; the budget keeps the samples within the slots.
        workers = max(1, min(len(requests), self.parallel))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llamacpp") as pool:
            futures = {pool.submit(self._complete, r, sampling): i for i, r in enumerate(requests)}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as e:  # noqa: BLE001 - one prompt's failure stays its own
                    results[i] = failed(requests[i].n, f"llama.cpp error: {e}")
                if progress:
                    progress(requests[i].n)
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Destroy the engine, bounded: only once its task loop has answered one request.

        xllamacpp's destructor calls `terminate()` and then joins the loop thread, holding the GIL.
        The loop thread sets `running = true` when it enters `start_loop()`, so a terminate that
        comes before that (an engine closed right after loading, e.g. a resumed run answered from
        the sample store, on a busy machine) is overwritten and the join waits forever. A /metrics
        round trip, answered inside the loop, proves the loop is running; if it does not come back
        within CLOSE_BARRIER_S the engine is kept (never destroyed) rather than hang the process.
        """
        server, self._server = self._server, None
        if server is None:
            return
        if loop_answers(server, CLOSE_BARRIER_S):
            del server  # the destructor's terminate now reaches a running loop
            return
        log.warning("llama.cpp's task loop did not answer in %.0fs; left to the process exit", CLOSE_BARRIER_S)
        keep_forever(server)


def loop_answers(server: Any, timeout_s: float) -> bool:
    """Whether the engine's task loop answers a /metrics request within `timeout_s` (asked on a
    daemon thread; xllamacpp releases the GIL while waiting, so the wait here is bounded)."""
    answer: list[str] = []

    def ask() -> None:
        try:
            answer.append(str(server.handle_metrics()))
        except Exception as e:  # noqa: BLE001 - any failure means: not proven
            answer.append(f"error: {e}")

    t = threading.Thread(target=ask, name="llamacpp-close-barrier", daemon=True)
    t.start()
    t.join(timeout_s)
    # Prometheus text from the loop ("llamacpp:..." series); an error body was answered outside it.
    return bool(answer) and "llamacpp:" in answer[0]


def keep_forever(obj: object) -> None:
    """Take a reference that is never released, so `obj`'s destructor never runs (not even at
    interpreter exit, where a hanging destructor would keep the process alive)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
