"""Re-derive a bench run's code checks from its stored programs with the current screen, and list
where they differ from what the run showed (a run made before a change to `codecheck` is then
read for what the change would have altered, without drawing anything again).

    python experiments/codecheck/recheck.py experiments/spct/results/dev23-judge-code4 --model rewardscale-judge-1.5b
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from rewardscale import models
from rewardscale.backends.base import Completion
from rewardscale.codecheck import check, program_requests
from rewardscale.config import JudgeConfig
from rewardscale.store import prompt_hash, sample_key
from rewardscale.types import Request, Sampling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a bench output directory (samples.jsonl, samples.sqlite)")
    ap.add_argument("--model", default=models.DEFAULT_MODEL, help="the embedded judge the run used")
    ap.add_argument("--max-tokens", type=int, default=160, help="the run's --max-tokens")
    ap.add_argument("--programs", type=int, default=4, help="the run's --code-check")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config = JudgeConfig(sampling=Sampling(max_tokens=args.max_tokens), code_check=args.programs, seed=args.seed)
    model_id = models.store_id(args.model)
    db = sqlite3.connect(args.run / "samples.sqlite")
    rows = [json.loads(line) for line in (args.run / "samples.jsonl").read_text().splitlines() if line.strip()]
    changed = shown = now = 0
    for row in rows:
        request = Request.from_dict(row["request"])
        (job,) = program_requests([request], config.code_check, config.seed)
        phash = prompt_hash(model_id, job.messages, config.code_sampling)
        drafts = []
        for i in range(job.n):
            hit = db.execute("select text from samples where key = ?", (sample_key(phash, job.seed, i),)).fetchone()
            drafts.append(Completion(hit[0]) if hit else Completion("", error="not in the store"))
        was = row["samples"][0].get("checked")
        c = check(drafts)
        is_now = None if c is None else c.output
        shown += was is not None
        now += is_now is not None
        if was != is_now:
            changed += 1
            print(f"{row['id']}: shown {str(was)[:60]!r} -> now {str(is_now)[:60]!r}")
    print(f"{len(rows)} requests: {shown} shown a checked answer in the run, {now} now; {changed} differ")


if __name__ == "__main__":
    main()
