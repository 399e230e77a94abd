"""Slot scheduling on the embedded judge: samples kept within the slots vs let loose on them.

Since each of k samples runs as a llama.cpp task of its own (so that a forced verdict continues
the sample in the slot that holds it), a call of many requests at k = 8 put k x requests tasks on
`parallel` slots: a queued task landed in whichever slot freed, which held another prompt, and
prefilled its prompt again. The backend now keeps no more samples in flight than slots
(`backends/slots.py: SlotBudget`) and prefills the prompts' shared template once for all slots.

Same requests (the first N pairs of the RewardBench-40 fixture), same judge settings as the
committed RewardBench-40 run (K = 8, forced verdicts after 192 tokens, 512-token limit, one
retry), one fresh engine per arm, in one process:

- `loose`: no budget and no shared prefix (the backend as of eeac7bb);
- `budget`: the slot budget alone;
- `scheduled`: the budget and the shared prefix (the default).

Prints each arm's wall time, its phases (samples, forced verdicts) and tokens/s, and the ratios
to `loose`. Run on an otherwise idle machine; numbers compare only within one run.

    python benchmarks/slot_scheduling.py --pairs 4 --out benchmarks/results/slot_scheduling.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rewardscale import GRM, Request, Sampling
from rewardscale.backends import make_backend
from rewardscale.backends.slots import SlotBudget

FIXTURE = Path(__file__).resolve().parents[1] / "src/rewardscale/bench/fixtures/rewardbench_40.jsonl"
ARMS = ("loose", "budget", "scheduled")


def requests(n_pairs: int) -> list[Request]:
    """The first pairs of each subset in turn, so a few pairs cover every subset."""
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    by_subset: dict[str, list[dict]] = {}
    for r in rows:
        by_subset.setdefault(r["subset"], []).append(r)
    picked = [r for group in zip(*by_subset.values()) for r in group][:n_pairs]
    return [Request.make(r["prompt"], [r["chosen"], r["rejected"]], id=r["id"]) for r in picked]


def run_arm(arm: str, reqs: list[Request], args: argparse.Namespace) -> dict:
    backend = make_backend("llamacpp", model=args.model, parallel=args.parallel)
    if arm == "loose":
        backend._budget = SlotBudget(10**6)  # as many in flight as asked for
    if arm in ("loose", "budget"):
        backend._share_prefix = lambda requests: None
    grm = GRM(
        backend,
        sampling=Sampling(temperature=0.5, max_tokens=512),
        seed=0,
        max_retries=1,
        force_verdict=True,
        critique_budget=192,
    )
    start = time.perf_counter()
    rewards = grm.score_batch(reqs, k=args.k)
    wall = time.perf_counter() - start
    tokens = sum(s.tokens for r in rewards for s in r.samples)
    grm.close()
    phases = {name: round(t, 1) for name, t in grm.phase_seconds.items()}
    return {
        "seconds": round(wall, 1),
        "phases": phases,
        "forcing_share": round(phases["verdicts"] / wall, 4),
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "right": sum(r.win_prob[0] for r in rewards),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m", help="embedded model name or GGUF path")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    reqs = requests(args.pairs)
    result: dict = {"pairs": len(reqs), "k": args.k, "parallel": args.parallel, "model": args.model}
    for arm in args.arms:
        result[arm] = run_arm(arm, reqs, args)
        print(arm, json.dumps(result[arm]), flush=True)
    if "loose" in result:
        for arm in args.arms:
            if arm != "loose":
                result[f"{arm}_wall_vs_loose"] = round(result[arm]["seconds"] / result["loose"]["seconds"], 3)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
