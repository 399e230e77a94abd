"""Accuracy sanity check of the embedded judge (issue 2): 4 pairs with an obviously better answer,
each presented in both orders (8 cases); Voting@k accuracy (ties count 1/#tied) and the per-sample
parse rate.

    python experiments/easy_pairs/eval.py -k 4
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from rewardscale import GRM, Request, Sampling

DATA = Path(__file__).parent / "data" / "easy_pairs.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=1024)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    requests, truth = [], []
    for row in rows:
        for good_first in (True, False):
            responses = [row["good"], row["bad"]] if good_first else [row["bad"], row["good"]]
            requests.append(Request.make(row["query"], responses))
            truth.append(0 if good_first else 1)
    grm = GRM.default(model=args.model, sampling=Sampling(max_tokens=args.max_tokens))
    t = time.perf_counter()
    rewards = grm.score_batch(requests, k=args.k)
    wall = time.perf_counter() - t
    samples = [j for r in rewards for j in r.samples]
    first_try = Counter(j.status.value for j in samples if j.attempts == 1)
    result = {
        "k": args.k,
        "cases": len(requests),
        "accuracy_expected": sum(r.win_prob[t] for r, t in zip(rewards, truth)) / len(requests),
        "accuracy_tiebreak": sum(r.best == t for r, t in zip(rewards, truth)) / len(requests),
        "valid_samples": f"{sum(j.valid for j in samples)}/{len(samples)}",
        "parsed_first_try": f"{sum(j.valid and j.attempts == 1 for j in samples)}/{len(samples)}",
        "statuses_first_try": dict(first_try),
        "retried_samples": sum(j.attempts > 1 for j in samples),
        "per_case": [{"truth": t, "rewards": r.rewards, "best": r.best} for r, t in zip(rewards, truth)],
        "wall_s": round(wall, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
