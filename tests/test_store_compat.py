"""A sample store written by an earlier version keeps answering: `tests/data/store_2026-12-01.sqlite`
was written on 2026-12-01 (before the generation road is unified, issue 15) by a forcing fake judge
on the RewardBench test file; a stored-only bench over it must give the numbers recorded then,
generating nothing. Regenerate only on purpose: `python -m tests.test_store_compat`."""

import json
import random
import shutil
from pathlib import Path

from rewardscale import GRM
from rewardscale.bench import run_bench
from rewardscale.store import SampleStore

from .fakes import verdict
from .test_verdict import ForcingFake, rambler

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "store_2026-12-01.sqlite"
EXPECTED = DATA / "store_2026-12-01.json"
KS = [1, 2, 4]


def judge(shown, seed, i):
    """Half the samples write a length-biased verdict of their own, half ramble and get forced."""
    if (seed + i) % 2:
        return rambler(shown, seed, i)
    r = random.Random(seed * 1000 + i)
    return verdict([min(10, len(s) // 3 + r.randint(0, 3)) for s in shown])


def bench(store: Path, out: Path, stored_only: bool) -> dict:
    grm = GRM(ForcingFake(judge), store=SampleStore(store), force_verdict=True, critique_budget=64, max_retries=1)
    with grm:
        return run_bench(
            grm, ["rewardbench"], [str(DATA / "rewardbench.jsonl")], KS, out, stored_only=stored_only, with_plot=False
        )


def numbers(res: dict) -> dict:
    b = res["benchmarks"]["rewardbench"]
    return {
        "curve": {k: b["curve"][k]["score"] for k in sorted(b["curve"])},
        "statuses": b["parse"]["statuses"],
        "n_examples": b["n_examples"],
    }


def test_a_store_written_on_2026_12_01_still_answers_a_stored_only_report(tmp_path):
    store = tmp_path / "old.sqlite"
    shutil.copyfile(FIXTURE, store)
    res = bench(store, tmp_path / "out", stored_only=True)
    assert res["partial"] == {"examples_complete": 5, "examples_total": 5}  # all served from the old store
    assert numbers(res) == json.loads(EXPECTED.read_text())
    assert numbers(res)["statuses"].get("forced")  # forced verdicts came from the store too


if __name__ == "__main__":  # write the fixture (only when its format is meant to change)
    FIXTURE.unlink(missing_ok=True)
    res = bench(FIXTURE, Path("/tmp/store-fixture-report"), stored_only=False)
    EXPECTED.write_text(json.dumps(numbers(res), indent=2, sort_keys=True) + "\n")
    print(json.dumps(numbers(res), indent=2))
