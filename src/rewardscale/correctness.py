"""The one rule for "this GRM sample's scores are correct", shared by RFT, RL and the meta RM.

A label says what is right for one request:

- n >= 2 responses: `best`, the ORIGINAL index of the best response. Correct means that response
  gets a strictly higher score than every other one (a tie for first place is wrong).
- n = 1 response with a `rating` 1..10: correct means the score equals the rating.
- n = 1 response with a binary `good` label (e.g. ReaLMistake's "has a mistake"): correct means
  the score is on the right side of `threshold` (>= threshold for good, < threshold for bad).
  This is our extension of the paper's rule for binary single-response data.

Unparseable samples (no scores) are always wrong. Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import RewardscaleError

GOOD_THRESHOLD = 6  # a binary "good" single response must score >= 6 (the 6-8 band and above)


class InvalidLabel(RewardscaleError, ValueError):
    """A label that does not fit its request (wrong field for n, index or rating out of range)."""


@dataclass(frozen=True)
class Label:
    """What is right for one request: exactly one of `best` (n >= 2), `rating` or `good` (n = 1)."""

    best: int | None = None
    rating: int | None = None
    good: bool | None = None

    def check(self, n: int) -> Label:
        """Raise InvalidLabel unless this label fits a request with n responses; return self."""
        given = [name for name in ("best", "rating", "good") if getattr(self, name) is not None]
        if len(given) != 1:
            raise InvalidLabel(f"a label needs exactly one of best, rating, good; got {given or 'none'}")
        if n >= 2:
            if self.best is None:
                raise InvalidLabel(f"{n} responses need a 'best' index, not {given[0]!r}")
            if not 0 <= self.best < n:
                raise InvalidLabel(f"best index {self.best} is out of range for {n} responses")
        elif n == 1:
            if self.best is not None:
                raise InvalidLabel("one response needs a 'rating' (1..10) or a binary 'good' label, not 'best'")
            if self.rating is not None and not 1 <= self.rating <= 10:
                raise InvalidLabel(f"rating {self.rating} is outside 1..10")
        else:
            raise InvalidLabel("a request needs at least one response")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("best", self.best), ("rating", self.rating), ("good", self.good)) if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(best=d.get("best"), rating=d.get("rating"), good=d.get("good"))


def is_correct(scores: Sequence[int] | None, label: Label, threshold: int = GOOD_THRESHOLD) -> bool:
    """True when `scores` (ORIGINAL response order; None = unparseable) satisfy `label`.

    n >= 2: the labelled best response has a strictly highest score (ties are wrong).
    n = 1: the score equals `label.rating`, or lies on the right side of `threshold` for `label.good`.
    """
    if scores is None:
        return False
    n = len(scores)
    label.check(n)
    if n >= 2:
        top = scores[label.best]
        return all(s < top for i, s in enumerate(scores) if i != label.best)
    if label.rating is not None:
        return scores[0] == label.rating
    return (scores[0] >= threshold) == bool(label.good)


def reward(scores: Sequence[int] | None, label: Label, threshold: int = GOOD_THRESHOLD) -> float:
    """The rule-based RL reward: +1 for correct scores, -1 otherwise (unparseable included)."""
    return 1.0 if is_correct(scores, label, threshold) else -1.0
