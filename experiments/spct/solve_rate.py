"""How often the embedded models answer the project's tasks right themselves, per family: the
ceiling a judge of the same size meets when it must work the answer out to tell two responses
apart (the generator-verifier gap). Reads `train data`'s graded answers (responses.jsonl, only
answers that stopped on their own) and the tasks' checkers; prints a table and writes JSON.

    python experiments/spct/solve_rate.py [--data experiments/spct/data] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from rewardscale.train.checkers import CheckError, check


def solve_rates(data: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{model: {family: {"right": n, "answers": n, "rate": r}}} over the stopped answers."""
    tasks = {t["id"]: t for t in map(json.loads, (data / "tasks.jsonl").open())}
    counts: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for line in (data / "responses.jsonl").open():
        r = json.loads(line)
        task = tasks.get(r["task"])
        if task is None or r.get("finish_reason") != "stop":
            continue
        try:
            right = check(task["check"], r["text"])
        except CheckError:
            right = False
        c = counts[(r["model"], task["family"])]
        c[0] += right
        c[1] += 1
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (model, family), (right, n) in sorted(counts.items()):
        out.setdefault(model, {})[family] = {"right": right, "answers": n, "rate": right / n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("experiments/spct/data"))
    ap.add_argument("--out", type=Path, default=Path("experiments/spct/results/solve_rate.json"))
    args = ap.parse_args()
    rates = solve_rates(args.data)
    families = sorted({f for per in rates.values() for f in per})
    print("| model | " + " | ".join(families) + " |")
    print("|---|" + "---|" * len(families))
    for model, per in rates.items():
        cells = [f"{per[f]['rate']:.0%} ({per[f]['right']}/{per[f]['answers']})" if f in per else "-" for f in families]
        print(f"| {model} | " + " | ".join(cells) + " |")
    args.out.write_text(json.dumps(rates, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
