"""Embedded CPU backend: llama.cpp's own server engine in process, via `xllamacpp`.

Why xllamacpp (measured, see benchmarks/bench_throughput.py and README): it ships a prebuilt
wheel (seconds to install, no compiler), and it runs llama.cpp's server loop in process, with
parallel slots, continuous batching and `n` completions per prompt as child tasks that copy the
parent's prefilled KV cache. So k samples of one prompt pay for one prefill, and all prompts of
a call decode together in one batch.

Why k samples stay one task of `n` children, not k tasks (tried in eeac7bb so that a forced
verdict continues its sample in the slot that holds it): a later task does not find the prompt in
a child's slot (`benchmarks/child_slots.py`: after a fan-out to 4 children, 3 of 4 tasks prefilled
all 632 prompt tokens again), so k tasks cost k prefills: more than re-prefilling the forced
samples saves (4 RewardBench-40 pairs, K = 8, forced after 192 tokens: children 0.93x the wall,
`benchmarks/sample_layout.py`).
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
        if log.isEnabledFor(logging.INFO):  # what it chose and why (as `rewardscale models` says)
            for line in engine_info.describe(parallel, threads, ctx_per_slot):
                log.info(line)

    @classmethod
    def on_engine(cls, server: Any, parallel: int, model_id: str) -> LlamaCppBackend:
        """Wrap an engine built elsewhere (an `xllamacpp.Server` configured by hand, or a fake in
        tests) with `parallel` slots."""
        backend = cls.__new__(cls)
        backend.parallel, backend.model_id, backend.lora, backend._server = parallel, model_id, [], server
        return backend

    def _complete(self, req: GenerationRequest, sampling: Sampling) -> list[Completion]:
        if req.verdict is not None:
            return [self._verdict(req, sampling)]
        body: dict[str, Any] = {
            "messages": req.chat(),
            "n": req.n,
            "seed": req.seed,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            # usage counts only the parent task's tokens; per-choice logprobs give each choice's
            # token count (one entry per token) at no measurable cost
            "logprobs": True,
        }
        if req.grammar is not None:  # constrained full output (GBNF)
            body["grammar"] = req.grammar
        out = self._server.handle_chat_completions(body)
        if not isinstance(out, dict) or "choices" not in out:
            return failed(req.n, self._error(out))
        choices = sorted(out["choices"], key=lambda c: c.get("index", 0))
        fallback = out.get("usage", {}).get("completion_tokens", 0)
        completions = [
            Completion(
                text=strip_prefix(c.get("message", {}).get("content") or "", req.prefix or ""),
                finish_reason=c.get("finish_reason"),
                tokens=len((c.get("logprobs") or {}).get("content") or ()) or fallback,
            )
            for c in choices
        ]
        if len(completions) != req.n:
            return failed(req.n, f"llama.cpp returned {len(completions)} completions, asked for {req.n}")
        return completions

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
        # One waiting thread per in-flight prompt; the engine itself decides what decodes when.
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
