"""The one small protocol every generation engine implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..types import Message, Sampling


class BackendError(RuntimeError):
    """The backend as a whole cannot serve (unreachable server, engine missing, model failed)."""


class MissingExtra(ImportError):
    """An optional engine is not installed; the message names the pip extra that brings it."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"this backend needs '{module}', which is not installed: pip install 'rewardscale[{extra}]'")


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt (chat messages) to complete `n` times, drawn with `seed`; with `grammar` (GBNF),
    every completion follows it (only backends with `grammar_generation` honour it)."""

    messages: tuple[Message, ...]
    n: int
    seed: int
    grammar: str | None = None


@dataclass(frozen=True)
class Completion:
    """One generated text. `error` is set (and text empty) when this completion failed alone."""

    text: str
    finish_reason: str | None = None
    tokens: int = 0
    error: str | None = None


Progress = Callable[[int], None]  # called with the number of completions just finished


@runtime_checkable
class Backend(Protocol):
    """Generates completions for many prompts at once; batching across them is the backend's job.

    `generate` returns, for each request, exactly `request.n` completions, in order. A failure that
    affects one request only is reported as `Completion(error=...)`; a failure of the whole engine
    raises BackendError.
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
