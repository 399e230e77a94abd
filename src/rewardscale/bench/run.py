"""`rewardscale bench`: load benchmarks, sample K = max(k) once (stored, resumable), evaluate
Voting@k for every k, run baselines on the same data, write the report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..batch import write_jsonl_atomic
from ..grm import GRM, SampleScorer, with_q
from ..vote import k_meta_at
from .cost import Timing
from .loaders import load
from .report import write_report
from .runner import BenchData, evaluate, sample_benchmarks, sample_stored_only


def parse_ks(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8] (sorted, unique, each >= 1)."""
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"--k must be a comma-separated list of integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"--k needs integers >= 1, got {text!r}")
    return ks


def run_bench(
    grm: GRM,
    names: Sequence[str],
    sources: Sequence[str],
    ks: Sequence[int],
    out_dir: str | Path,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    baselines: Sequence[Any] = (),
    meta: dict[str, Any] | None = None,
    with_plot: bool = True,
    on_total: Callable[[int], None] | None = None,
    stored_only: bool = False,
    meta_rm: SampleScorer | None = None,
    k_meta: int | None = None,
    per_subset: bool | None = None,
) -> dict[str, Any]:
    """Run the benchmarks `names` (data from `sources`, same order) and write the report.

    stored_only: generate nothing; report on the examples whose samples are all in the GRM's
    store already (a partial report of a run still going or stopped; marked as partial).
    meta_rm: also score every sample with this meta RM and report MetaRM@k next to Voting@k
    (same K samples; at each k, `vote.k_meta_at(k, k_meta)`: k // 2, or `k_meta` capped at k).
    per_subset: per-subset curves in the plot (None: for benchmarks with few subsets)."""
    if k_meta is not None and meta_rm is None:
        raise ValueError("--k-meta needs --meta-rm")
    if k_meta is not None:
        k_meta_at(max(ks), k_meta)  # a k_meta below 1 fails before any sampling
    if len(names) != len(sources):
        raise ValueError(f"give one --data per benchmark: {len(names)} benchmarks, {len(sources)} --data")
    benches = [BenchData(n, load(n, s, limit=limit)) for n, s in zip(names, sources)]
    K = max(ks)
    if on_total:
        on_total(K * sum(len(b.examples) for b in benches))
    partial = None
    timing: Timing | None = None
    if stored_only:
        kept, total = sample_stored_only(grm, benches, K)
        if not kept:
            raise ValueError(f"no example has all its K = {K} samples in the store yet")
        benches = [b for b in benches if b.examples]
        partial = {"examples_complete": kept, "examples_total": total}
    else:
        timing = timed_sampling(grm, benches, K, progress)
    metarm_meta: dict[str, Any] = {}
    if meta_rm is not None:
        metarm_meta = attach_q(benches, meta_rm)
        if timing is not None:
            timing = replace(timing, metarm_seconds_per_sample=metarm_meta["seconds_per_sample"])
    results = evaluate(benches, ks, seed=seed, metarm=meta_rm is not None, k_meta=k_meta, timing=timing)
    if metarm_meta:
        results["metarm"].update(metarm_meta)
    if partial:
        results["partial"] = partial
    results["meta"] = {
        "model": getattr(grm.backend, "model_id", "?"),
        **grm.sampling.to_dict(),
        "seed": seed,
        "max_retries": grm.max_retries,
        **(meta or {}),
    }
    results["baselines"] = [bl.evaluate(benches) for bl in baselines]
    out = Path(out_dir)
    write_jsonl_atomic(out / "samples.jsonl", _sample_rows(benches))
    write_report(results, out, with_plot=with_plot, per_subset=per_subset)
    return results


def timed_sampling(
    grm: GRM, benches: Sequence[BenchData], K: int, progress: Callable[[int], None] | None = None
) -> Timing:
    """Sample the benchmarks and time it: wall seconds, and the tokens and samples generated in
    that time (with a store, only what was not served from it, so a resumed run's seconds are
    apportioned over what it actually generated)."""
    before = None if grm.store is None else (grm.store.stats.generated_tokens, grm.store.stats.generated)
    phases_before = dict(grm.phase_seconds)
    start = time.perf_counter()
    sample_benchmarks(grm, benches, K, progress)
    seconds = time.perf_counter() - start
    phases = {name: round(t - phases_before.get(name, 0.0), 3) for name, t in grm.phase_seconds.items()}
    if before is None or grm.store is None:
        flat = [j for b in benches for js in b.judgments for j in js[:K]]
        return Timing(seconds, sum(j.tokens for j in flat), len(flat), phases=phases)
    s = grm.store.stats
    return Timing(seconds, s.generated_tokens - before[0], s.generated - before[1], phases=phases)


def attach_q(benches: Sequence[BenchData], meta_rm: SampleScorer) -> dict[str, Any]:
    """Score every sample with the meta RM (recorded as `Judgment.q`); returns its cost."""
    requests = [[e.request for e in b.examples] for b in benches]
    start = time.perf_counter()
    scored = 0
    for b, reqs in zip(benches, requests):
        b.judgments = with_q(b.judgments, meta_rm.score_samples(reqs, b.judgments))
        scored += sum(j.q is not None for js in b.judgments for j in js)
    seconds = time.perf_counter() - start
    return {
        "model": str(getattr(meta_rm, "path", type(meta_rm).__name__)),
        "samples_scored": scored,
        "seconds": seconds,
        "seconds_per_sample": seconds / scored if scored else None,
    }


def _sample_rows(benches: Sequence[BenchData]):
    """One row per example: its label, its request (query messages + responses: the text a meta RM
    reads) and every sample (with `q` when a meta RM scored it)."""
    for b in benches:
        for e, js in zip(b.examples, b.judgments):
            yield {
                "benchmark": b.name,
                "id": e.id,
                "subset": e.subset,
                "good": list(e.good),
                "has_error": e.has_error,
                **({"style": list(e.style)} if e.style is not None else {}),
                "request": e.request.to_dict(),
                "samples": [j.to_dict() for j in js],
            }


def load_results(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "results.json").read_text())
