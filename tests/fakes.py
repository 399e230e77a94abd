"""A scripted fake judge backend for pipeline tests."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rewardscale.backends.base import Completion, GenerationRequest
from rewardscale.types import Sampling

RESPONSE_BLOCK = re.compile(r"\[The Begin of Response (\d+)\]\n(.*?)\n\[The End of Response \1\]", re.S)


def shown_responses(req: GenerationRequest) -> list[str]:
    """The responses as the judge sees them in the prompt, in shown order."""
    return [m.group(2) for m in RESPONSE_BLOCK.finditer(req.messages[-1]["content"])]


class FakeBackend:
    """A judge scripted by a function of (shown responses, seed, completion index) -> text.

    Records every GenerationRequest of a sample, so tests can check batching, n and seeds; a call
    of verdict requests (`GenerationRequest.verdict`) goes to `verdicts`, which a fake that
    declares the `verdicts` capability defines.
    """

    model_id = "fake"

    def __init__(self, judge: Callable[[list[str], int, int], str] | None = None, finish_reason: str = "stop"):
        self.judge = judge or length_judge
        self.finish_reason = finish_reason
        self.calls: list[list[GenerationRequest]] = []

    def generate(self, requests: Sequence[GenerationRequest], sampling: Sampling, progress=None):
        if requests and all(r.verdict is not None for r in requests):
            return [[c] for c in self.verdicts(list(requests), sampling)]
        assert all(r.verdict is None for r in requests), "samples and verdicts come in separate calls"
        self.calls.append(list(requests))
        out = []
        for req in requests:
            shown = shown_responses(req)
            out.append(
                [Completion(self.judge(shown, req.seed, i), self.finish_reason, tokens=10) for i in range(req.n)]
            )
            if progress:
                progress(req.n)
        return out

    def verdicts(self, requests: list[GenerationRequest], sampling: Sampling) -> list[Completion]:
        raise AssertionError("this fake decodes no verdicts (it declares no such capability)")

    def close(self) -> None:
        pass

    @property
    def prompts(self) -> list[GenerationRequest]:
        return [r for call in self.calls for r in call]


def verdict(scores: Sequence[int]) -> str:
    return (
        "Specific Criteria: correctness (70%), clarity (30%).\n"
        "Analysis: the responses differ in length.\n"
        f"Scores: \\boxed{{{', '.join(map(str, scores))}}}"
    )


def length_judge(shown: list[str], seed: int, i: int) -> str:
    """Scores each shown response by its length (longer is better), capped to 1..10."""
    return verdict([max(1, min(10, len(s))) for s in shown])
