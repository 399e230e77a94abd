"""Pick the pieces of the judge data one CPU session can afford, stratified by task family.

Writes, next to the data:
- `rft_train.jsonl`: per family up to `--train-pairs` pairs (natural and near-miss alternating),
  `--train-lists` best-of-n lists and `--train-singles` single responses: the RFT examples.
- `grounded_train.jsonl` (with `--grounded-pairs/--grounded-lists`): judge records for the
  checker-grounded cold start (`rewardscale train grounded`), none of them an RFT example.
- `dev_pairs.jsonl`: per family up to `--dev-pairs` pairs, half with a near miss, in the bench
  `generic` schema with `subset` = family: what raw and trained judges are measured on.

    python experiments/spct/subsets.py experiments/spct/data
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from pathlib import Path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def shape(r: dict) -> str:
    return "pair" if "chosen" in r else "list" if "responses" in r else "single"


def pick_pairs(pairs: list[dict], n: int, rng: random.Random) -> list[dict]:
    """Up to n pairs alternating near-miss and natural rejected responses."""
    near = [r for r in pairs if r["origins"][1] == "near_miss"]
    natural = [r for r in pairs if r["origins"][1] != "near_miss"]
    rng.shuffle(near)
    rng.shuffle(natural)
    out = []
    while len(out) < n and (near or natural):
        for pool in (natural, near):
            if pool and len(out) < n:
                out.append(pool.pop())
    return out


def stratify(records: list[dict], pairs: int, lists: int, singles: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    by_family: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_family[r["family"]][shape(r)].append(r)
    out = []
    for family in sorted(by_family):
        groups = by_family[family]
        out += pick_pairs(groups["pair"], pairs, rng)
        out += rng.sample(groups["list"], min(lists, len(groups["list"])))
        out += rng.sample(groups["single"], min(singles, len(groups["single"])))
    rng.shuffle(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--train-pairs", type=int, default=10)
    ap.add_argument("--train-lists", type=int, default=2)
    ap.add_argument("--train-singles", type=int, default=2)
    ap.add_argument("--dev-pairs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grounded-pairs", type=int, default=0, help="Also write grounded_train.jsonl (cold start).")
    ap.add_argument("--grounded-lists", type=int, default=0)
    ap.add_argument("--grounded-out", default="grounded_train.jsonl", help="File name of the cold-start records.")
    a = ap.parse_args()
    train_records = read(a.data / "train.jsonl")
    train = stratify(train_records, a.train_pairs, a.train_lists, a.train_singles, a.seed)
    dev = stratify(read(a.data / "dev.jsonl"), a.dev_pairs, 0, 0, a.seed)
    with open(a.data / "rft_train.jsonl", "w", encoding="utf-8") as f:
        for r in train:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(a.data / "dev_pairs.jsonl", "w", encoding="utf-8") as f:
        for r in dev:
            f.write(json.dumps({**r, "subset": r["family"]}, ensure_ascii=False) + "\n")
    if a.grounded_pairs or a.grounded_lists:  # cold-start SFT data, none of it an RFT example
        used = {r["id"] for r in train}
        rest = [r for r in train_records if r["id"] not in used]
        grounded = stratify(rest, a.grounded_pairs, a.grounded_lists, 0, a.seed + 1)
        with open(a.data / a.grounded_out, "w", encoding="utf-8") as f:
            for r in grounded:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{a.grounded_out}: {len(grounded)} judge records")
    counts = defaultdict(int)
    for r in train:
        counts[shape(r)] += 1
    print(f"rft_train.jsonl: {len(train)} examples {dict(counts)}; dev_pairs.jsonl: {len(dev)} pairs")


if __name__ == "__main__":
    main()
