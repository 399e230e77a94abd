"""Report a benchmark from the samples of two `rewardscale bench` runs: BASE for every example,
PATCH for the examples it has (a run on the subset of examples whose prompts a change altered).

Why: a store is not kept with the committed results, only `samples.jsonl`; when a setting changes
the prompts of a few examples only (e.g. `--decline-facts` speaks only where a response declines),
the other examples' prompts are byte-identical, so their samples are what a full run would draw
(same seeds: a sample's seed derives from its request and the run's seed). This evaluates the
union with the bench's own estimator and writes the usual report (results.json/.md, plots).

    python experiments/spct/merge_runs.py rewardbench BASE_DIR PATCH_DIR --data FILE --k 1,2,4,8 --out OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rewardscale.batch import write_jsonl_atomic
from rewardscale.bench.loaders import load
from rewardscale.bench.report import write_report
from rewardscale.bench.run import _sample_rows, parse_ks
from rewardscale.bench.runner import BenchData, evaluate
from rewardscale.types import Judgment


def samples_by_id(folder: Path) -> dict[str, list[Judgment]]:
    rows = (json.loads(line) for line in (folder / "samples.jsonl").open())
    return {r["id"]: [Judgment.from_dict(s) for s in r["samples"]] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("benchmark")
    ap.add_argument("base", type=Path)
    ap.add_argument("patch", type=Path)
    ap.add_argument("--data", required=True)
    ap.add_argument("--k", default="1,2,4,8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    ks = parse_ks(args.k)
    base, patch = samples_by_id(args.base), samples_by_id(args.patch)
    bench = BenchData(args.benchmark, load(args.benchmark, args.data))
    missing = [e.id for e in bench.examples if e.id not in base and e.id not in patch]
    if missing:
        raise SystemExit(f"no samples for {len(missing)} examples, e.g. {missing[:3]}")
    bench.judgments = [patch.get(e.id) or base[e.id] for e in bench.examples]
    results = evaluate([bench], ks, seed=args.seed)
    meta = json.loads((args.patch / "results.json").read_text()).get("meta", {})
    patched = sorted(e.id for e in bench.examples if e.id in patch)
    results["meta"] = {**meta, "merged": {"base": str(args.base), "patch": str(args.patch), "patched": patched}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(args.out / "samples.jsonl", _sample_rows([bench]))
    write_report(results, args.out)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
