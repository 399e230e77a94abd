"""One example format for every benchmark: a request plus what counts as a right answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..types import Request


class Kind(str, Enum):
    """How an example is scored.

    PAIRWISE: two responses, `good` marks the preferred one; right when it gets the top reward.
    BEST_OF_N: n responses, `good` marks the acceptable picks (one for RewardBench 2 and RMB
        best-of-N, every correct response for PPE correctness); right when the top reward goes to
        a good one. Ties count 1/#tied (expected) or by a seeded random choice.
    BOTH_ORDERS: two responses judged in both shown orders (JudgeBench): the samples that showed
        each order vote among themselves, each order's vote is a decision (+1, -1 or 0 for a tie
        or no sample), and the pair goes to the response the two decisions add up to; 0 is a tie.
    BINARY: one response with a binary label (`has_error`); scored over the whole set by ROC-AUC
        of the reward as a detector of "no error".
    """

    PAIRWISE = "pairwise"
    BEST_OF_N = "best_of_n"
    BOTH_ORDERS = "both_orders"
    BINARY = "binary"


@dataclass(frozen=True)
class Example:
    """A benchmark item. `good[i]` is True for responses that are right to pick (not BINARY);
    `has_error` is the binary label (BINARY only); `style` is RM-Bench's (chosen style, rejected
    style) of the pair, 0 concise, 1 detailed, 2 detailed with markdown (None elsewhere)."""

    id: str
    request: Request
    kind: Kind
    subset: str
    good: tuple[bool, ...] = ()
    has_error: bool | None = None
    style: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind is Kind.BINARY:
            if self.has_error is None or self.request.n != 1:
                raise ValueError(f"example {self.id}: a binary example has one response and a has_error label")
        elif len(self.good) != self.request.n or not any(self.good):
            raise ValueError(f"example {self.id}: 'good' must mark at least one of its {self.request.n} responses")
        if self.kind is Kind.BOTH_ORDERS and self.request.n != 2:
            raise ValueError(f"example {self.id}: a both-orders example has exactly two responses")
