"""Compute-aware evaluation: generated tokens and wall time per example at every k.

Voting@k for k < K is estimated over k-subsets of an example's K samples, and each sample is in
k/K of those subsets, so the expected cost of Voting@k on an example is exactly k/K of what its K
samples cost (every attempt and every forced or re-decoded verdict included). Seconds come from
the run's own wall time of sampling, apportioned by generated tokens (or by samples when the
backend reports no token counts); a run served entirely from the store has no seconds to give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..types import Judgment


@dataclass(frozen=True)
class Timing:
    """What this run's sampling took: wall seconds, and the tokens and samples it generated in
    that time (not those served from the store). `metarm_seconds_per_sample`: meta RM scoring.
    `phases`: wall seconds of each generation phase (`GRM.phase_seconds`: code checks, drafts, samples,
    verdicts), so the share of forcing in the wall time is read off, not guessed."""

    seconds: float
    tokens: int
    samples: int
    metarm_seconds_per_sample: float | None = None
    phases: dict[str, float] | None = None

    def seconds_per_token(self) -> float | None:
        return self.seconds / self.tokens if self.tokens > 0 else None

    def seconds_per_sample(self) -> float | None:
        return self.seconds / self.samples if self.samples > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "tokens_generated": self.tokens,
            "samples_generated": self.samples,
            "seconds_per_token": self.seconds_per_token(),
            "seconds_per_sample": self.seconds_per_sample(),
            **({"seconds_by_phase": self.phases} if self.phases is not None else {}),
        }


def example_tokens(judgments: Sequence[Sequence[Judgment]], K: int) -> np.ndarray:
    """(E,) generated tokens of each example's first K samples."""
    return np.array([sum(j.tokens for j in js[:K]) for js in judgments], dtype=float)


def cost_at(tokens_K: float, k: int, K: int, timing: Timing | None) -> dict[str, float | None]:
    """Mean tokens and seconds per example of Voting@k, from the mean tokens of K samples."""
    tokens = tokens_K * k / K
    seconds = None
    if timing is not None:
        if timing.seconds_per_token() is not None and tokens_K > 0:
            seconds = tokens * timing.seconds_per_token()
        elif timing.seconds_per_sample() is not None:
            seconds = k * timing.seconds_per_sample()
    return {"tokens_per_example": float(tokens), "seconds_per_example": seconds}


def cost_curve(
    judgments: Sequence[Sequence[Judgment]], ks: Sequence[int], timing: Timing | None
) -> dict[str, dict[str, float | None]]:
    """{k: {tokens_per_example, seconds_per_example}} of Voting@k for every k (mean over examples)."""
    K = max(ks)
    tokens_K = float(example_tokens(judgments, K).mean()) if len(judgments) else 0.0
    return {str(k): cost_at(tokens_K, k, K, timing) for k in ks}


def metarm_cost(voting: dict[str, float | None], k: int, timing: Timing | None) -> dict[str, float | None]:
    """MetaRM@k draws the same k samples as Voting@k and scores each with the meta RM."""
    seconds = voting["seconds_per_example"]
    per = None if timing is None else timing.metarm_seconds_per_sample
    if seconds is not None and per is not None:
        seconds += k * per
    return {"tokens_per_example": voting["tokens_per_example"], "seconds_per_example": seconds}
