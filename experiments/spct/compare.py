"""Raw vs trained judge on the dev pairs, from two `rewardscale bench generic` report folders.

Prints a markdown table: Voting@1 and Voting@K with 95% intervals (from each results.json), the
tie rate and the rate of verdicts of the judge's own (not forced) over all samples, Voting@K on
the near-miss pairs and on the natural ones (from samples.jsonl: every sample votes, ties 1/2),
and Voting@K per task family.

    python experiments/spct/compare.py experiments/spct/results/dev-raw experiments/spct/results/dev-spct
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def vote_all(example: dict) -> float:
    """Voting over every valid sample of one pair: 1 right, 0 wrong, 1/2 tie (or nothing valid)."""
    totals = [0.0, 0.0]
    for s in example["samples"]:
        if s.get("scores"):
            totals = [t + x for t, x in zip(totals, s["scores"])]
    best = 0 if example["good"][0] else 1
    if totals[0] == totals[1]:
        return 0.5
    return 1.0 if totals[best] > totals[1 - best] else 0.0


def summary(folder: Path, origins: dict[str, list[str]]) -> dict:
    res = json.loads((folder / "results.json").read_text())
    (bench,) = res["benchmarks"].values()
    curve = bench["curve"]
    ks = sorted(curve, key=int)
    statuses = bench["parse"]["statuses"]
    total = sum(statuses.values())
    examples = [json.loads(line) for line in (folder / "samples.jsonl").open()]
    by_kind: dict[str, list[float]] = defaultdict(list)
    by_family: dict[str, list[float]] = defaultdict(list)
    for ex in examples:
        acc = vote_all(ex)
        kind = "near miss" if origins.get(ex["id"], ["", ""])[1] == "near_miss" else "natural"
        by_kind[kind].append(acc)
        by_family[ex["subset"]].append(acc)
    return {
        "name": folder.name,
        "K": ks[-1],
        "v1": curve[ks[0]],
        "vK": curve[ks[-1]],
        "expected": bench.get("curve_expected"),
        "ties": bench["position_bias"]["ties_rate"],
        "own": statuses.get("ok", 0) / total if total else 0.0,
        "first_over_chance": bench["position_bias"].get("first_over_chance"),
        "kinds": {k: (sum(v) / len(v), len(v)) for k, v in sorted(by_kind.items())},
        "families": {k: sum(v) / len(v) for k, v in sorted(by_family.items())},
        "n": len(examples),
    }


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def with_ci(point: dict) -> str:
    """A curve point as `score (lo-hi)`, in %."""
    return f"{pct(point['score'])} ({pct(point['ci'][0])}-{pct(point['ci'][1])})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--dev", type=Path, default=Path("experiments/spct/data/dev_pairs.jsonl"))
    a = ap.parse_args()
    origins = {r["id"]: r["origins"] for r in map(json.loads, a.dev.open())}
    rows = [summary(f, origins) for f in a.folders]
    k = rows[0]["K"]
    print(
        f"| judge | pairs | Voting@1 (95% CI) | Voting@{k} (95% CI) | near-miss V@{k} | natural V@{k} "
        "| sample tie rate | own verdicts | first-shown wins / chance |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v1, vk = r["v1"], r["vK"]
        near, nat = r["kinds"].get("near miss", (0, 0)), r["kinds"].get("natural", (0, 0))
        print(
            f"| {r['name']} | {r['n']} | {with_ci(v1)} | {with_ci(vk)} | {pct(near[0])} (n={near[1]}) "
            f"| {pct(nat[0])} (n={nat[1]}) | {pct(r['ties'])} | {pct(r['own'])} | {r['first_over_chance']:.2f} |"
        )
    with_expected = [r for r in rows if r["expected"]]
    if with_expected:
        print()
        print(f"| judge (expected scores, same samples) | Voting@1 (95% CI) | Voting@{k} (95% CI) |")
        print("|---|---|---|")
        for r in with_expected:
            e1, ek = r["expected"][str(min(map(int, r["expected"])))], r["expected"][str(k)]
            print(f"| {r['name']} | {with_ci(e1)} | {with_ci(ek)} |")
    families = sorted({f for r in rows for f in r["families"]})
    print()
    print(f"| judge | {' | '.join(families)} |")
    print("|---|" + "---|" * len(families))
    for r in rows:
        print(f"| {r['name']} | " + " | ".join(pct(r["families"].get(f, float("nan"))) for f in families) + " |")


if __name__ == "__main__":
    main()
