"""k samples on the embedded judge: this code's layout against a git revision's, in one script.

Each code scores the same requests (the first N pairs of the RewardBench-40 fixture, one per
subset in turn) with the settings of the committed RewardBench-40 run (K = 8, forced verdicts
after 192 tokens, 512-token limit, one retry, seed 0) on a fresh engine, in a subprocess whose
PYTHONPATH holds that code's `src/`. Prints each one's wall time, its phases (samples, forced
verdicts), generated tokens/s, and the ratio. Why: eeac7bb ran each of k samples as a task of
its own after a fan-out of `n` children (so a forced verdict continues its sample in its slot);
llama.cpp's later tasks do not find the prompt in the children's slots
(`benchmarks/child_slots.py`), so each of them prefilled the prompt again.

    python benchmarks/sample_layout.py --pairs 4 --baseline eeac7bb --out benchmarks/results/sample_layout.json

`--in-slot` instead runs this code twice, forced verdicts in a second pass against forced in the
sample's own decode under the budget grammar (`JudgeConfig.verdict_in_slot`):

    python benchmarks/sample_layout.py --pairs 4 --in-slot --out benchmarks/results/verdict_in_slot.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fleet_orchestration import env_for, extract_src  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "src/rewardscale/bench/fixtures/rewardbench_40.jsonl"


def worker(args: argparse.Namespace) -> None:
    """Score the pairs with the code on sys.path; print one JSON line."""
    from rewardscale import GRM, Request, Sampling
    from rewardscale.backends import make_backend

    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    by_subset: dict[str, list[dict]] = {}
    for r in rows:
        by_subset.setdefault(r["subset"], []).append(r)
    picked = [r for group in zip(*by_subset.values()) for r in group][: args.pairs]
    reqs = [Request.make(r["prompt"], [r["chosen"], r["rejected"]], id=r["id"]) for r in picked]
    backend = make_backend("llamacpp", model=args.model, parallel=args.parallel)
    grm = GRM(
        backend,
        sampling=Sampling(temperature=0.5, max_tokens=512),
        seed=0,
        max_retries=1,
        force_verdict=True,
        critique_budget=192,
        **({"verdict_in_slot": True} if args.in_slot else {}),
    )
    start = time.perf_counter()
    rewards = grm.score_batch(reqs, k=args.k)
    wall = time.perf_counter() - start
    tokens = sum(s.tokens for r in rewards for s in r.samples)
    phases = {name: round(t, 1) for name, t in grm.phase_seconds.items()}
    forced = sum(s.status.value == "forced" for r in rewards for s in r.samples)
    passes = sum(s.note.startswith("forced after") for r in rewards for s in r.samples)
    grm.close()
    print(
        json.dumps(
            {
                "seconds": round(wall, 1),
                "phases": phases,
                "forcing_share": round(phases["verdicts"] / wall, 4),
                "samples": sum(len(r.samples) for r in rewards),
                "forced": forced,
                "forced_in_a_second_pass": passes,
                "tokens": tokens,
                "tokens_per_s": round(tokens / wall, 2),
                "expected_right": round(sum(r.win_prob[0] for r in rewards), 2),
            }
        ),
        flush=True,
    )


def run(src: Path, args: argparse.Namespace, in_slot: bool = False) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--pairs",
        str(args.pairs),
        "-k",
        str(args.k),
        "--parallel",
        str(args.parallel),
        "--model",
        args.model,
        *(["--in-slot"] if in_slot else []),
    ]
    out = subprocess.run(cmd, env=env_for(src), capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m", help="embedded model name or GGUF path")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--baseline", default="eeac7bb", help="a git revision whose code runs first")
    ap.add_argument("--in-slot", action="store_true", help="verdict pass vs in-slot verdicts")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    result: dict = {"pairs": args.pairs, "k": args.k, "parallel": args.parallel, "model": args.model}
    if args.in_slot:
        result["verdict pass"] = base = run(ROOT / "src", args)
        print("verdict pass", json.dumps(base), flush=True)
        result["verdict in slot"] = this = run(ROOT / "src", args, in_slot=True)
        print("verdict in slot", json.dumps(this), flush=True)
        result["wall_in_slot_vs_pass"] = round(this["seconds"] / base["seconds"], 3)
        return report(result, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        result[f"baseline {args.baseline}"] = base = run(extract_src(args.baseline, Path(tmp)), args)
        print("baseline", json.dumps(base), flush=True)
        result["this code"] = this = run(ROOT / "src", args)
        print("this code", json.dumps(this), flush=True)
    result["wall_vs_baseline"] = round(this["seconds"] / base["seconds"], 3)
    report(result, args.out)


def report(result: dict, out: Path | None) -> None:
    print(json.dumps(result, indent=2))
    if out:
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
