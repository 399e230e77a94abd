"""Voting@k: sum each response's scores over the valid samples, pick the best, break ties by seed."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .types import Judgment


def totals(samples: Sequence[Judgment], n: int, mode: str = "integer") -> list[float]:
    """Per-response sum of scores (original order) over the valid samples; invalid ones abstain.

    mode "expected" sums each sample's expected scores where it has them (its integer scores
    where it has none)."""
    out = [0.0] * n
    for j in samples:
        if j.valid:
            scores = j.expected if mode == "expected" and j.expected is not None else j.scores
            for i, s in enumerate(scores):  # type: ignore[arg-type]
                out[i] += s
    return out


def leaders(rewards: Sequence[float]) -> list[int]:
    top = max(rewards)
    return [i for i, r in enumerate(rewards) if r == top]


def win_probability(rewards: Sequence[float], any_valid: bool = True) -> list[float]:
    """Expected "i is picked" under a uniform tie-break: 1/#tied for each leader, else 0.

    With no valid sample at all every response is tied.
    """
    tied = leaders(rewards) if any_valid else list(range(len(rewards)))
    return [1.0 / len(tied) if i in tied else 0.0 for i in range(len(rewards))]


def pick_best(rewards: Sequence[float], seed: int, any_valid: bool = True) -> int | None:
    """The argmax, ties broken by a random choice seeded with `seed` (reproducible); None when
    every sample abstained."""
    if not any_valid:
        return None
    tied = leaders(rewards)
    return tied[0] if len(tied) == 1 else random.Random(seed).choice(tied)


# ---------------------------------------------------------------- MetaRM@k (guided voting)


def k_meta_at(k: int, k_meta: int | None = None) -> int:
    """How many of k samples vote in MetaRM@k: the one rule, used by `score`, `bench`, `serve`, the
    GRM, the estimators and the integrations alike.

    None: the paper's default, half of the k samples (k // 2, at least 1). A number is capped at
    k (a k_meta >= k votes with every sample, which is Voting@k), so one `--k-meta` serves every
    k of a bench curve and a server default serves calls that ask for fewer samples; the
    Reward's `k_meta` records the number used. A k_meta below 1, or not an integer, is no number
    of voters: ValueError.
    """
    if k_meta is None:
        return max(1, k // 2)
    if isinstance(k_meta, bool) or not isinstance(k_meta, int):
        raise ValueError(f"k_meta must be an integer, got {k_meta!r}")
    if k_meta < 1:
        raise ValueError(f"k_meta must be >= 1, got {k_meta}")
    return min(k_meta, max(1, k))


def _missing(q: float | None) -> bool:
    return q is None or q != q  # None or NaN


def meta_order(q: Sequence[float | None], valid: Sequence[bool]) -> list[int]:
    """Sample positions, best first, in the order MetaRM@k keeps them: valid samples with a q
    before the rest (an abstaining sample only fills a slot when too few valid ones exist),
    higher q first, ties in q broken by the lower position (deterministic)."""
    return sorted(
        range(len(q)),
        key=lambda i: (not valid[i] or _missing(q[i]), 0.0 if _missing(q[i]) else -float(q[i])),  # type: ignore[arg-type]
    )  # sorted() is stable: equal keys keep position order


def select_top(samples: Sequence[Judgment], q: Sequence[float | None], k_meta: int) -> list[int]:
    """Positions (ascending) of the k_meta samples MetaRM@k votes with (see `meta_order`)."""
    if len(q) != len(samples):
        raise ValueError(f"{len(q)} meta RM scores for {len(samples)} samples")
    k_meta = k_meta_at(len(samples), k_meta)
    return sorted(meta_order(q, [j.valid for j in samples])[:k_meta])


def metarm_totals(
    samples: Sequence[Judgment], q: Sequence[float | None], n: int, k_meta: int, mode: str = "integer"
) -> tuple[list[float], list[int]]:
    """MetaRM@k: keep the top k_meta samples by q and sum their scores (Voting over those only).
    Returns (per-response totals, positions of the samples kept)."""
    kept = select_top(samples, q, k_meta)
    return totals([samples[i] for i in kept], n, mode), kept
