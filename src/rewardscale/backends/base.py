"""The one small protocol every generation engine implements."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import RewardscaleError
from ..types import Message, Sampling


class BackendError(RewardscaleError, RuntimeError):
    """The backend as a whole cannot serve (unreachable server, engine missing, model failed)."""


class MissingExtra(RewardscaleError, ImportError):
    """An optional engine is not installed; the message names the pip extra that brings it."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"this backend needs '{module}', which is not installed: pip install 'rewardscale[{extra}]'")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond plain sampling, declared once (`Backend.capabilities`) and read
    by `JudgeConfig.check`, the GRM, the store and the server instead of probing attributes.

    constrained_generation: honours `GenerationRequest.grammar` (a whole generation under GBNF).
    verdicts: honours `GenerationRequest.verdict` (constrained verdict continuations: forced
        verdicts, expected-score re-decodes); `verdict_constraint` says how ("grammar", "vllm",
        "sglang").
    slots: a fixed number of sequences it decodes together (llama.cpp `parallel`; None: no such
        number); the GRM groups samples by it so that a verdict pass finds them in their slots.
    concurrency: calls worth keeping in flight at once (the store's thread pool; None: 8).
    thread_safe: may be called from several threads at once (the server then runs batches side
        by side).
    reports_each: has `generate_each` (reports each job as it finishes, for the store's writer).
    continuation: continues an assistant text (`GenerationRequest.prefix` on a sample request;
        the judge's blind principles need it).
    """

    constrained_generation: bool = False
    verdicts: bool = False
    verdict_constraint: str = "none"
    slots: int | None = None
    concurrency: int | None = None
    thread_safe: bool = False
    reports_each: bool = False
    continuation: bool = False


def capabilities_of(backend: object) -> Capabilities:
    """`backend.capabilities`, or none beyond plain sampling for a backend that declares nothing
    (a user's own minimal `Backend`)."""
    caps = getattr(backend, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (chat messages) to complete `n` times, drawn with `seed` (vLLM's habit: one
    request carries its constraint).

    grammar: GBNF that every completion follows (backends whose capabilities say
        `constrained_generation`).
    prefix: the start of the assistant's reply, which the completions continue (capabilities
        `continuation`); a completion holds only the new text.
    verdict: continue the assistant text `prefix` (ending in `Scores: \\boxed{`) with a verdict for
        this many responses only, under the backend's verdict constraint (capabilities `verdicts`;
        `rewardscale.verdict`): forced verdicts and expected-score re-decodes. Such a request asks
        for one completion, which holds only the new text.
    top_logprobs: > 0 asks for each token's log-probability and its top alternatives.
    """

    messages: tuple[Message, ...]
    n: int
    seed: int
    grammar: str | None = None
    prefix: str | None = None
    verdict: int | None = None
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        if self.verdict is not None and (self.prefix is None or self.n != 1 or self.verdict < 1):
            raise ValueError("a verdict request continues a prefix, once, for at least one response")

    def chat(self) -> list[dict[str, str]]:
        """The messages as a chat body takes them: with the assistant prefix (if any) as a final
        assistant message, which the engine continues."""
        messages = [dict(m) for m in self.messages]
        return messages + [{"role": "assistant", "content": self.prefix}] if self.prefix is not None else messages


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated token and the log-probabilities of the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Completion:
    """One generated text. `error` is set (and text empty) when this completion failed alone;
    `logprobs` when the request asked for them (`top_logprobs`)."""

    text: str
    finish_reason: str | None = None
    tokens: int = 0
    error: str | None = None
    logprobs: tuple[TokenLogprobs, ...] | None = None


Progress = Callable[[int], None]  # called with the number of completions just finished


@runtime_checkable
class Backend(Protocol):
    """Generates completions for many prompts at once; batching across them is the backend's job.

    `generate` returns, for each request, exactly `request.n` completions, in order. A failure that
    affects one request only is reported as `Completion(error=...)`; a failure of the whole engine
    raises BackendError. A backend declares what it can do beyond that in a `capabilities`
    attribute (`Capabilities`; optional: `capabilities_of` reads none for a backend without it).
    """

    model_id: str

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: Sampling,
        progress: Progress | None = None,
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...


def failed(n: int, error: str) -> list[Completion]:
    return [Completion(text="", finish_reason="error", error=error) for _ in range(n)]


@dataclass(frozen=True)
class Deadline:
    """When the caller stops waiting for a backend call: at `at` (time.monotonic) or as soon as
    `cancelled()` says so. Backends that can (openai) cancel their upstream work then."""

    at: float
    cancelled: Callable[[], bool] = lambda: False

    def left(self) -> float:
        """Seconds left (0 once passed or cancelled)."""
        return 0.0 if self.cancelled() else max(0.0, self.at - time.monotonic())


_deadline: ContextVar[Deadline | None] = ContextVar("rewardscale_deadline", default=None)


@contextmanager
def deadline(scope: Deadline | None) -> Iterator[None]:
    """Backend calls made in this block (this thread's context) end by `scope`; the server sets
    it per batch from its calls' deadlines. Thread pools must carry it (contextvars.copy_context)."""
    token = _deadline.set(scope)
    try:
        yield
    finally:
        _deadline.reset(token)


def current_deadline() -> Deadline | None:
    """The Deadline of the enclosing `deadline(...)` block, or None (wait as long as it takes)."""
    return _deadline.get()
