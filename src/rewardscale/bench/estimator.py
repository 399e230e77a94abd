"""Voting@k for every k <= K from ONE run of K samples per example (as pass@k is estimated).

For each example, the accuracy at k is the average, over all C(K, k) subsets of the K samples,
of the accuracy Voting@k would have had on that subset: an unbiased estimate of the accuracy of
a fresh Voting@k run (the K samples are i.i.d. draws of the judge). When C(K, k) is small
(<= `exact_limit`) every subset is enumerated; otherwise `mc_subsets` subsets are drawn uniformly
at random (seeded), which is still unbiased, with a small recorded Monte-Carlo error.

Caveat: position-balanced plans make the K samples of one example balanced as a whole, so a
subset of k < K of them is only approximately balanced; the estimate is for Voting@k with
i.i.d.-like order assignments, which is what the subsets are.

Scores are an array (K, n) with NaN where a sample abstained (did not parse). A subset's vote
sums the valid scores; a subset with no valid sample ties every response. Ties count 1/#tied
(`expected`), by a seeded random choice (`sampled`), or as wrong (`strict`, the rule of RM-Bench's
and JudgeBench's own scripts).

JudgeBench's rule from the same run (`first` given: which response each sample showed first):
the samples of a subset that showed each order vote among themselves, each order's vote is a
decision (+1, -1, or 0 for a tie or no valid sample of that order), and the pair goes to the
response the two decisions add up to; a sum of 0 is a tie.

MetaRM@k from the same run: each k-subset keeps its top k_meta samples by the meta RM's q (the
order of `rewardscale.vote.meta_order`: valid before abstaining, higher q first, lower sample
index on ties) and votes over those. With the same seed it uses the same subsets as Voting@k, so
the two curves are paired.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from ..vote import k_meta_at, meta_order


@dataclass(frozen=True)
class KEstimate:
    """Estimated accuracy of Voting@k for one example: tie-aware expectation, seeded random
    tie-break, whether every subset was enumerated, and how many subsets were used."""

    expected: float
    sampled: float
    exact: bool
    subsets: int
    strict: float  # ties count as wrong


def subsets(K: int, k: int, rng: np.random.Generator, exact_limit: int = 20_000, mc_subsets: int = 4_000):
    """Index array (S, k): all k-subsets of range(K) when few, else S uniform random ones."""
    if not 1 <= k <= K:
        raise ValueError(f"need 1 <= k <= K, got k={k}, K={K}")
    if comb(K, k) <= exact_limit:
        return np.array(list(combinations(range(K), k)), dtype=np.int64), True
    return np.argsort(rng.random((mc_subsets, K)), axis=1)[:, :k], False


def vote_subsets(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Leaders mask (S, n) of Voting over each subset of sample indices (rows of idx)."""
    valid = ~np.isnan(scores).any(axis=1)
    sums = np.nan_to_num(scores)[idx].sum(axis=1)
    leaders = sums == sums.max(axis=1, keepdims=True)
    leaders[~valid[idx].any(axis=1)] = True
    return leaders


def both_orders_subsets(scores: np.ndarray, first: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Leaders mask (S, 2) of JudgeBench's two-order decision over each subset (rows of idx):
    scores (K, 2) in original order, first (K,) the response each sample showed first."""
    if scores.shape[1] != 2:
        raise ValueError(f"the two-order decision needs two responses, got {scores.shape[1]}")
    diff = np.nan_to_num(scores[:, 0] - scores[:, 1])  # > 0 favours response 0; abstained rows are 0
    total = np.zeros(len(idx))
    for order in (0, 1):
        total += np.sign((diff * (np.asarray(first) == order))[idx].sum(axis=1))
    return np.stack([total >= 0, total <= 0], axis=1)


def _leaders(scores: np.ndarray, idx: np.ndarray, first: np.ndarray | None) -> np.ndarray:
    return vote_subsets(scores, idx) if first is None else both_orders_subsets(scores, first, idx)


def voting_accuracy(
    scores: np.ndarray,
    good: np.ndarray,
    k: int,
    seed: int = 0,
    exact_limit: int = 20_000,
    mc_subsets: int = 4_000,
    first: np.ndarray | None = None,
) -> KEstimate:
    """Estimated Voting@k accuracy of one example (scores (K, n), good (n,) bool); with `first`
    (K,) (the response each sample showed first) by JudgeBench's two-order decision instead."""
    scores = np.asarray(scores, dtype=float)
    good = np.asarray(good, dtype=bool)
    rng = np.random.default_rng(seed)
    idx, exact = subsets(scores.shape[0], k, rng, exact_limit, mc_subsets)
    return _estimate(_leaders(scores, idx, first), good, rng, exact)


def rank_order(scores: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, rank) of one example's K samples for MetaRM@k: `order[r]` is the sample at rank r
    (0 = kept first), `rank[i]` the rank of sample i. NaN q = not scored (abstained)."""
    valid = ~np.isnan(scores).any(axis=1)
    qs = [None if np.isnan(x) else float(x) for x in np.asarray(q, dtype=float)]
    order = np.array(meta_order(qs, valid.tolist()), dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return order, rank


def top_by_q(idx: np.ndarray, order: np.ndarray, rank: np.ndarray, k_meta: int) -> np.ndarray:
    """(S, k_meta) sample indices: each subset's (row of idx) top k_meta samples by rank."""
    return order[np.sort(rank[idx], axis=1)[:, :k_meta]]


def metarm_accuracy(
    scores: np.ndarray,
    q: np.ndarray,
    good: np.ndarray,
    k: int,
    k_meta: int | None = None,
    seed: int = 0,
    exact_limit: int = 20_000,
    mc_subsets: int = 4_000,
    first: np.ndarray | None = None,
) -> KEstimate:
    """Estimated MetaRM@k accuracy of one example: scores (K, n), q (K,) (NaN = not scored),
    good (n,) bool; k_meta defaults to k // 2 (at least 1). Same seed, same subsets as
    `voting_accuracy`; with `first`, the kept samples decide by the two-order rule."""
    scores = np.asarray(scores, dtype=float)
    good = np.asarray(good, dtype=bool)
    k_meta = k_meta_at(k, k_meta)
    if len(q) != scores.shape[0]:
        raise ValueError(f"{len(q)} q values for {scores.shape[0]} samples")
    rng = np.random.default_rng(seed)
    idx, exact = subsets(scores.shape[0], k, rng, exact_limit, mc_subsets)
    order, rank = rank_order(scores, q)
    return _estimate(_leaders(scores, top_by_q(idx, order, rank, k_meta), first), good, rng, exact)


def _estimate(leaders: np.ndarray, good: np.ndarray, rng: np.random.Generator, exact: bool) -> KEstimate:
    """Tie-aware, seeded-tie-break and strict accuracy from the leaders mask (S, n) of S subsets."""
    n_lead = leaders.sum(axis=1)
    right = (leaders & good).sum(axis=1)
    expected = float((right / n_lead).mean())
    strict = float(((n_lead == 1) & (right == 1)).mean())
    # seeded random tie-break: pick the r-th leader, r uniform in [0, n_lead)
    r = np.floor(rng.random(len(leaders)) * n_lead).astype(int)
    chosen = np.argmax(np.cumsum(leaders, axis=1) > r[:, None], axis=1)
    sampled = float(good[chosen].mean())
    return KEstimate(expected, sampled, exact, len(leaders), strict)


def voting_scores(scores: np.ndarray, k: int, seed: int = 0, replicates: int = 200) -> np.ndarray:
    """For single-response (binary) examples: (replicates, E) mean valid score of a random
    k-subset per example and replicate (NaN when the subset has no valid sample).

    `scores` is (E, K) with NaN for abstentions. With k == K there is one replicate (exact).
    A metric averaged over replicates (e.g. ROC-AUC) is an unbiased estimate of that metric
    for a fresh Voting@k run.
    """
    return _binary_scores(scores, None, k, None, seed, replicates)


def metarm_scores(
    scores: np.ndarray, q: np.ndarray, k: int, k_meta: int | None = None, seed: int = 0, replicates: int = 200
) -> np.ndarray:
    """MetaRM@k for single-response examples: like `voting_scores` (same seed, same subsets), but
    each k-subset keeps its top k_meta samples by q (E, K) before averaging."""
    k_meta = k_meta_at(k, k_meta)
    return _binary_scores(scores, q, k, k_meta, seed, replicates)


def _binary_scores(
    scores: np.ndarray, q: np.ndarray | None, k: int, k_meta: int | None, seed: int, replicates: int
) -> np.ndarray:
    E, K = scores.shape
    rng = np.random.default_rng(seed)
    reps = 1 if k == K else replicates
    idx = np.argsort(rng.random((reps, E, K)), axis=2)[:, :, :k]
    if q is not None and k_meta is not None:
        kept = np.empty((reps, E, k_meta), dtype=np.int64)
        for e in range(E):
            order, rank = rank_order(scores[e][:, None], q[e])
            kept[:, e] = top_by_q(idx[:, e], order, rank, k_meta)
        idx = kept
    picked = np.take_along_axis(np.broadcast_to(scores, (reps, E, K)), idx, axis=2)
    with warnings.catch_warnings():  # all-NaN rows (no valid sample) give NaN, on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(picked, axis=2)
