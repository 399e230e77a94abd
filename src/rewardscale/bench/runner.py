"""Bench runner: sample K = max(k) once per example, then derive Voting@k for every k.

`sample_benchmarks` does the (expensive, stored, resumable) sampling; `evaluate` is a pure
function from examples + judgments to the results dict that the report writes out.
"""

from __future__ import annotations

import copy
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from ..examples import Example, Kind
from ..grm import GRM
from ..stored import NotStored, StoredBackend
from ..types import Judgment
from ..vote import k_meta_at
from .cost import Timing, cost_curve, metarm_cost
from .estimator import metarm_accuracy, metarm_scores, voting_accuracy, voting_scores
from .metrics import (
    OVERALL_MEMBERS,
    SCORERS,
    bootstrap_ci,
    rewardbench_sections,
    rm_bench_group,
    rm_bench_sections,
    roc_auc,
    style_matrix,
)


@dataclass
class BenchData:
    """One benchmark's examples and, once sampled, K judgments per example."""

    name: str
    examples: list[Example]
    judgments: list[list[Judgment]] = field(default_factory=list)


def sample_benchmarks(
    grm: GRM, benches: Sequence[BenchData], K: int, progress: Callable[[int], None] | None = None
) -> None:
    """Draw K samples per example for every benchmark in ONE batched GRM call (stored if the GRM
    has a store, so an interrupted bench resumes)."""
    requests = [e.request for b in benches for e in b.examples]
    judgments = grm.sample(requests, K, progress)
    at = 0
    for b in benches:
        b.judgments = judgments[at : at + len(b.examples)]
        at += len(b.examples)


def sample_stored_only(grm: GRM, benches: Sequence[BenchData], K: int) -> tuple[int, int]:
    """Keep only the examples whose K samples (and retries) are all in the GRM's store, generating
    nothing: a copy of the GRM (same settings, so the same store keys) reads the store only.
    Returns (examples kept, examples in total)."""
    if grm.store is None:
        raise ValueError("stored-only evaluation needs a GRM with a store")
    reader = copy.copy(grm)
    reader.backend = StoredBackend(None, grm.store, model_id=grm.backend.model_id)
    kept = total = 0
    for b in benches:
        examples, judgments = [], []
        for e in b.examples:
            total += 1
            try:
                judgments.append(reader.sample([e.request], K)[0])
            except NotStored:
                continue
            examples.append(e)
        b.examples, b.judgments = examples, judgments
        kept += len(examples)
    return kept, total


def score_matrix(judgments: Sequence[Judgment], n: int, expected: bool = False) -> np.ndarray:
    """(K, n) scores in original order, NaN rows for samples that abstained. `expected`: the
    probability-weighted scores of expected mode instead (NaN where a sample has none)."""
    m = np.full((len(judgments), n), np.nan)
    for i, j in enumerate(judgments):
        if j.valid and not expected:
            m[i] = j.scores
        elif j.valid and j.expected is not None:
            m[i] = j.expected
    return m


def has_expected(judgments: Sequence[Sequence[Judgment]]) -> bool:
    """Whether the samples carry expected scores (sampled with `--score-mode expected`)."""
    valid = [j for js in judgments for j in js if j.valid]
    return bool(valid) and all(j.expected is not None for j in valid)


def shown_first(judgments: Sequence[Judgment]) -> np.ndarray:
    """(K,) the original index of the response each sample showed first."""
    return np.array([j.spec.permutation[0] for j in judgments], dtype=np.int64)


def order_rule(e: Example, judgments: Sequence[Judgment]) -> np.ndarray | None:
    """`first` for the estimator when the example is scored in both orders (JudgeBench), else None."""
    return shown_first(judgments) if e.kind is Kind.BOTH_ORDERS else None


def q_vector(judgments: Sequence[Judgment]) -> np.ndarray:
    """(K,) meta RM scores, NaN where a sample has none (it did not parse)."""
    return np.array([np.nan if j.q is None else j.q for j in judgments], dtype=float)


def _seed(*parts: Any) -> int:
    return zlib.crc32(repr(parts).encode())


def parse_stats(judgments: Sequence[Sequence[Judgment]]) -> dict[str, Any]:
    """Final statuses, abstention rate (no valid verdict after retries), first-try failure rate,
    and (with code checks) the share of samples shown a checked answer."""
    flat = [j for js in judgments for j in js]
    if not flat:
        return {"samples": 0}
    statuses = Counter(j.status.value for j in flat)
    checked = sum(j.checked is not None for j in flat)
    return {
        "samples": len(flat),
        "statuses": dict(statuses),
        "abstained_rate": sum(not j.valid for j in flat) / len(flat),
        "first_try_failure_rate": sum(j.attempts > 1 or not j.valid for j in flat) / len(flat),
        **({"checked_rate": checked / len(flat)} if checked else {}),
    }


def position_bias(judgments: Sequence[Sequence[Judgment]]) -> dict[str, Any]:
    """How often the response SHOWN FIRST gets the strictly highest score, versus chance
    (1/n of the samples that have a strict winner), over valid samples with n >= 2."""
    first = last = decided = 0
    chance = 0.0
    samples = 0
    for js in judgments:
        for j in js:
            if not j.valid or j.shown_scores is None or len(j.shown_scores) < 2:
                continue
            samples += 1
            s = list(j.shown_scores)
            top = max(s)
            if s.count(top) != 1:
                continue
            decided += 1
            chance += 1 / len(s)
            first += s[0] == top
            last += s[-1] == top
    if not samples:
        return {"samples": 0}
    return {
        "samples": samples,
        "first_wins": first / samples,
        "last_wins": last / samples,
        "chance": chance / samples,
        "first_over_chance": first / chance if chance else None,
        "ties_rate": 1 - decided / samples,
    }


def strict_winner(scores: Sequence[float]) -> int | None:
    """The response with the strictly highest score (original order), None on a tie for the top."""
    top = max(scores)
    return list(scores).index(top) if list(scores).count(top) == 1 else None


def position_consistency(judgments: Sequence[Sequence[Judgment]]) -> dict[str, Any]:
    """How often the best response stays best when the shown order changes: over every pair of
    valid samples of one example that showed the responses in different orders, the share where
    both name the same single best response (`consistent`; a tie in either sample is not), the
    same among pairs where both samples have a single best (`consistent_decided`), and that
    figure for a judge picking at random (`chance`, 1/n). Uses the samples already drawn."""
    pairs = decided = same = 0
    chance = 0.0
    for js in judgments:
        shown = [(j.spec.permutation, strict_winner(j.scores)) for j in js if j.valid and len(j.scores) >= 2]
        for (p1, w1), (p2, w2) in combinations(shown, 2):
            if p1 == p2:
                continue
            pairs += 1
            if w1 is not None and w2 is not None:
                decided += 1
                chance += 1 / len(p1)
                same += w1 == w2
    if not pairs:
        return {"pairs": 0}
    return {
        "pairs": pairs,
        "consistent": same / pairs,
        "consistent_decided": same / decided if decided else None,
        "chance": chance / decided if decided else None,
    }


def chance_score(name: str, examples: Sequence[Example]) -> float:
    """The benchmark's score for a judge that picks a response uniformly at random (its scoring
    rule on per-example accuracies #good / n); 0.5 for ROC-AUC."""
    if all(e.kind is Kind.BINARY for e in examples):
        return 0.5
    acc = np.array([sum(e.good) / e.request.n for e in examples])
    return float(SCORERS.get(name, SCORERS["generic"])(acc, [e.subset for e in examples]))


def rm_bench_matrices(examples: Sequence[Example], acc: np.ndarray) -> dict[str, list]:
    """RM-Bench's 3x3 style matrix per domain group and their mean ('all'); None for empty cells."""
    groups = np.array([rm_bench_group(e.subset.rsplit("/", 1)[0]) for e in examples])
    styles = [e.style for e in examples]
    mats = {
        g: style_matrix(acc[groups == g], [s for s, m in zip(styles, groups == g) if m])
        for g in dict.fromkeys(groups.tolist())
    }
    mats["all"] = np.mean(list(mats.values()), axis=0)
    return {g: [[None if np.isnan(x) else float(x) for x in row] for row in m] for g, m in mats.items()}


def evaluate(
    benches: Sequence[BenchData],
    ks: Sequence[int],
    seed: int = 0,
    resamples: int = 1000,
    metarm: bool = False,
    k_meta: int | None = None,
    timing: Timing | None = None,
) -> dict[str, Any]:
    """Results for every benchmark and k: score, seeded-tie-break and ties-as-wrong scores, 95%
    bootstrap CI, per-subset accuracies, chance level, parse-failure rate, position bias and
    position consistency (RewardBench and RM-Bench: their sections; RM-Bench: its style matrix);
    plus Overall when several of the paper's four benchmarks were run.

    metarm: the judgments carry meta RM scores (`Judgment.q`); add MetaRM@k (`curve_metarm`,
    same subsets as Voting@k, with the paired difference's interval) for every k, keeping
    k_meta = k // 2 samples (or `k_meta`, capped at k).

    Every curve point also carries its compute (`rewardscale.bench.cost`): generated tokens per
    example, and seconds per example apportioned from `timing` (None without it)."""
    ks = sorted(set(ks))
    out: dict[str, Any] = {"ks": ks, "K": max(ks), "seed": seed, "benchmarks": {}}
    if timing is not None:
        out["timing"] = timing.to_dict()
    if metarm:
        out["metarm"] = {"k_meta": {str(k): k_meta_at(k, k_meta) for k in ks}}
    for b in benches:
        res = out["benchmarks"][b.name] = _evaluate_one(b, ks, seed, resamples)
        cost = cost_curve(b.judgments, ks, timing)
        for k in ks:
            res["curve"][str(k)].update(cost[str(k)])
        res["tokens_per_sample"] = _tokens_per_sample(b.judgments, max(ks))
        if metarm:
            res["curve_metarm"] = _evaluate_metarm(b, ks, seed, resamples, k_meta)
            for k in ks:
                res["curve_metarm"][str(k)].update(metarm_cost(cost[str(k)], k, timing))
    members = [n for n in OVERALL_MEMBERS if n in out["benchmarks"]]
    if len(members) >= 2:
        out["overall"] = {
            "members": members,
            "curve": {
                str(k): float(np.mean([out["benchmarks"][n]["curve"][str(k)]["score"] for n in members])) for k in ks
            },
        }
        if metarm:
            out["overall"]["curve_metarm"] = {
                str(k): float(np.mean([out["benchmarks"][n]["curve_metarm"][str(k)]["score"] for n in members]))
                for k in ks
            }
    return out


def _tokens_per_sample(judgments: Sequence[Sequence[Judgment]], K: int) -> float:
    """Mean generated tokens of one sample (attempts and verdicts included)."""
    flat = [j.tokens for js in judgments for j in js[:K]]
    return float(np.mean(flat)) if flat else 0.0


def _evaluate_metarm(
    b: BenchData, ks: Sequence[int], seed: int, resamples: int, k_meta: int | None
) -> dict[str, dict[str, Any]]:
    """MetaRM@k per k from the same K samples (and the same subsets) as Voting@k; `diff_ci` is the
    95% bootstrap interval of MetaRM@k minus Voting@k over the same resampled examples."""
    K = max(ks)
    curve: dict[str, dict[str, Any]] = {}
    if all(e.kind is Kind.BINARY for e in b.examples):
        scores = np.stack([score_matrix(js[:K], 1)[:, 0] for js in b.judgments])
        qs = np.stack([q_vector(js[:K]) for js in b.judgments])
        no_error = np.array([not e.has_error for e in b.examples])
        for k in ks:
            km = k_meta_at(k, k_meta)
            reps = metarm_scores(scores, qs, k, km, seed=_seed(seed, b.name, k))
            base = voting_scores(scores, k, seed=_seed(seed, b.name, k))
            auc = _mean_auc(reps, no_error)
            few, few_base = reps[:20], base[:20]
            ci_seed = _seed(seed, b.name, k, "ci")
            ci = bootstrap_ci(
                lambda ix, few=few: _mean_auc(few[:, ix], no_error[ix]), len(b.examples), ci_seed, resamples
            )
            diff = bootstrap_ci(
                lambda ix, few=few, fb=few_base: (
                    _mean_auc(few[:, ix], no_error[ix]) - _mean_auc(fb[:, ix], no_error[ix])
                ),
                len(b.examples),
                ci_seed,
                resamples,
            )
            curve[str(k)] = {"score": auc, "score_sampled": auc, "ci": list(ci), "diff_ci": list(diff), "k_meta": km}
        return curve
    scorer = SCORERS.get(b.name, SCORERS["generic"])
    subsets = [e.subset for e in b.examples]
    subs = np.array(subsets)
    for k in ks:
        km = k_meta_at(k, k_meta)
        meta, vote = [], []
        for e, js in zip(b.examples, b.judgments):
            m = score_matrix(js[:K], e.request.n)
            s = _seed(seed, e.id, k)
            first = order_rule(e, js[:K])
            meta.append(metarm_accuracy(m, q_vector(js[:K]), np.array(e.good), k, km, seed=s, first=first))
            vote.append(voting_accuracy(m, np.array(e.good), k, seed=s, first=first))
        acc = np.array([x.expected for x in meta])
        base = np.array([x.expected for x in vote])
        ci_seed = _seed(seed, b.name, k)
        ci = bootstrap_ci(lambda ix, acc=acc: scorer(acc[ix], subs[ix]), len(acc), seed=ci_seed, resamples=resamples)
        diff = bootstrap_ci(
            lambda ix, acc=acc, base=base: scorer(acc[ix], subs[ix]) - scorer(base[ix], subs[ix]),
            len(acc),
            seed=ci_seed,
            resamples=resamples,
        )
        curve[str(k)] = {
            "score": scorer(acc, subsets),
            "score_sampled": scorer(np.array([x.sampled for x in meta]), subsets),
            "score_strict": scorer(np.array([x.strict for x in meta]), subsets),
            "ci": list(ci),
            "diff_ci": list(diff),
            "exact": all(x.exact for x in meta),
            "k_meta": km,
        }
    return curve


def _mean_auc(reps: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC averaged over replicate score vectors (NaN when a class is missing)."""
    aucs = [roc_auc(r, positive) for r in reps]
    return float("nan") if np.isnan(aucs).all() else float(np.nanmean(aucs))


def _evaluate_one(b: BenchData, ks: Sequence[int], seed: int, resamples: int) -> dict[str, Any]:
    if len(b.judgments) != len(b.examples):
        raise ValueError(f"{b.name}: sample the examples before evaluating them")
    K = max(ks)
    if any(len(js) < K for js in b.judgments):
        raise ValueError(f"{b.name}: every example needs K = {K} samples")
    binary = all(e.kind is Kind.BINARY for e in b.examples)
    if not binary and any(e.kind is Kind.BINARY for e in b.examples):
        raise ValueError(f"{b.name}: binary and ranking examples cannot be mixed in one benchmark")
    res: dict[str, Any] = {
        "n_examples": len(b.examples),
        "metric": "roc_auc" if binary else "accuracy",
        "curve": {},
        "subsets": {},
        "chance": chance_score(b.name, b.examples),
        "parse": parse_stats(b.judgments),
        "position_bias": position_bias(b.judgments),
        "position_consistency": position_consistency(b.judgments),
    }
    if binary:
        scores = np.stack([score_matrix(js[:K], 1)[:, 0] for js in b.judgments])  # (E, K)
        no_error = np.array([not e.has_error for e in b.examples])
        for k in ks:
            reps = voting_scores(scores, k, seed=_seed(seed, b.name, k))
            auc = _mean_auc(reps, no_error)
            few = reps[:20]
            ci = bootstrap_ci(
                lambda ix, few=few: _mean_auc(few[:, ix], no_error[ix]),
                len(b.examples),
                seed=_seed(seed, b.name, k, "ci"),
                resamples=resamples,
            )
            res["curve"][str(k)] = {"score": auc, "score_sampled": auc, "ci": list(ci), "exact": k == K}
        return res
    res["curve"] = _ranking_curve(b, ks, seed, resamples, res)
    if has_expected(b.judgments):  # the same samples, summing expected instead of integer scores
        res["curve_expected"] = _ranking_curve(b, ks, seed, resamples, None, expected=True)
    return res


def _ranking_curve(
    b: BenchData, ks: Sequence[int], seed: int, resamples: int, res: dict[str, Any] | None, expected: bool = False
) -> dict[str, dict[str, Any]]:
    """Voting@k per k on a ranking benchmark (integer or `expected` scores); with `res`, also its
    per-subset accuracies and the benchmark's own sections (RewardBench, RM-Bench)."""
    K = max(ks)
    subsets = [e.subset for e in b.examples]
    scorer = SCORERS.get(b.name, SCORERS["generic"])
    subs = np.array(subsets)
    curve: dict[str, dict[str, Any]] = {}
    for k in ks:
        est = [
            voting_accuracy(
                score_matrix(js[:K], e.request.n, expected),
                np.array(e.good),
                k,
                seed=_seed(seed, e.id, k),
                first=order_rule(e, js[:K]),
            )
            for e, js in zip(b.examples, b.judgments)
        ]
        acc = np.array([x.expected for x in est])
        sampled = np.array([x.sampled for x in est])
        strict = np.array([x.strict for x in est])
        ci = bootstrap_ci(
            lambda ix, acc=acc: scorer(acc[ix], subs[ix]), len(acc), seed=_seed(seed, b.name, k), resamples=resamples
        )
        curve[str(k)] = {
            "score": scorer(acc, subsets),
            "score_sampled": scorer(sampled, subsets),
            "score_strict": scorer(strict, subsets),
            "ci": list(ci),
            "exact": all(x.exact for x in est),
        }
        if res is None:
            continue
        for s in dict.fromkeys(subsets):
            mask = subs == s
            res["subsets"].setdefault(s, {"n": int(mask.sum())})[str(k)] = float(acc[mask].mean())
        if b.name == "rewardbench":
            res.setdefault("sections", {})[str(k)] = rewardbench_sections(acc, subsets)
        if b.name == "rm-bench" and all(e.style is not None for e in b.examples):
            res.setdefault("sections", {})[str(k)] = rm_bench_sections(acc, subsets)
            res.setdefault("style_matrix", {})[str(k)] = rm_bench_matrices(b.examples, acc)
    return curve
