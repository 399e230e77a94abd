"""The one rule for "this GRM sample's scores are correct", shared by RFT, RL and the meta RM.

A label says what is right for one request:

- n >= 2 responses: `best`, the ORIGINAL index of the best response, or a tuple of the indices
  that are right to pick (several acceptable answers: PPE correctness, RewardBench 2 with more
  than one chosen). Correct means one response gets a strictly higher score than every other one
  (a tie for first place is wrong) and it is one of them.
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
    """What is right for one request: exactly one of `best` (n >= 2), `rating` or `good` (n = 1).

    `best` is one index, or several (a tuple, or any sequence: normalised to sorted unique ints,
    and one index to a plain int, so `Label(best=[1]) == Label(best=1)`)."""

    best: int | tuple[int, ...] | None = None
    rating: int | None = None
    good: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.best, (list, tuple, set, frozenset)):
            try:
                picks = tuple(sorted(set(self.best)))
            except TypeError:  # mixed types: left for check() to name
                picks = tuple(self.best)
            object.__setattr__(self, "best", picks[0] if len(picks) == 1 else picks)

    @property
    def picks(self) -> frozenset[int]:
        """The indices that are right to pick (empty for a single-response label)."""
        if self.best is None:
            return frozenset()
        return frozenset(self.best if isinstance(self.best, tuple) else (self.best,))

    @property
    def sole_best(self) -> int | None:
        """The best response's index when exactly one is right to pick (what a hint can name)."""
        return self.best if isinstance(self.best, int) else None

    @classmethod
    def from_good(cls, good: Sequence[bool]) -> Label:
        """A ranking label from one flag per response (True: right to pick)."""
        return cls(best=tuple(i for i, g in enumerate(good) if g))

    def check(self, n: int) -> Label:
        """Raise InvalidLabel unless this label fits a request with n responses; return self."""
        given = [name for name in ("best", "rating", "good") if getattr(self, name) is not None]
        if len(given) != 1:
            raise InvalidLabel(f"a label needs exactly one of best, rating, good; got {given or 'none'}")
        if n >= 2:
            if self.best is None:
                raise InvalidLabel(f"{n} responses need a 'best' index, not {given[0]!r}")
            if not self.picks:
                raise InvalidLabel(f"no response is marked right to pick among the {n}")
            for i in sorted(self.picks):
                if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                    raise InvalidLabel(f"best index {i} is out of range for {n} responses")
        elif n == 1:
            if self.best is not None:
                raise InvalidLabel("one response needs a 'rating' (1..10) or a binary 'good' label, not 'best'")
            if self.rating is not None and not 1 <= self.rating <= 10:
                raise InvalidLabel(f"rating {self.rating} is outside 1..10")
        else:
            raise InvalidLabel("a request needs at least one response")
        return self

    def to_dict(self) -> dict[str, Any]:
        best = list(self.best) if isinstance(self.best, tuple) else self.best
        return {k: v for k, v in (("best", best), ("rating", self.rating), ("good", self.good)) if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Label:
        return cls(best=d.get("best"), rating=d.get("rating"), good=d.get("good"))


def is_correct(scores: Sequence[int] | None, label: Label, threshold: int = GOOD_THRESHOLD) -> bool:
    """True when `scores` (ORIGINAL response order; None = unparseable) satisfy `label`.

    n >= 2: one response has a strictly highest score (ties are wrong) and it is right to pick.
    n = 1: the score equals `label.rating`, or lies on the right side of `threshold` for `label.good`.
    """
    if scores is None:
        return False
    n = len(scores)
    label.check(n)
    if n >= 2:
        top = max(scores)
        leaders = [i for i, s in enumerate(scores) if s == top]
        return len(leaders) == 1 and leaders[0] in label.picks
    if label.rating is not None:
        return scores[0] == label.rating
    return (scores[0] >= threshold) == bool(label.good)


def reward(scores: Sequence[int] | None, label: Label, threshold: int = GOOD_THRESHOLD) -> float:
    """The rule-based RL reward: +1 for correct scores, -1 otherwise (unparseable included)."""
    return 1.0 if is_correct(scores, label, threshold) else -1.0
