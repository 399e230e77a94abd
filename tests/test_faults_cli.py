"""Fault injection through `rewardscale score FILE -o` (a real process) against a fake
OpenAI-compatible judge on loopback (tests/fake_upstream.py): 5xx, hangs, malformed 200 bodies,
closed connections and slow bodies end in a completed run or a clear error, and no stored sample
is lost or generated twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .fake_upstream import FakeUpstream, Faults
from .server_proc import CLI, ROOT

RUN_S = 120  # one run against the fake judge takes seconds; a hung one fails


def requests_file(path: Path, n: int, poison: int | None = None) -> Path:
    lines = []
    for i in range(n):
        bad = " POISON" if i == poison else ""
        lines.append({"id": f"r{i}", "query": f"question {i}?", "responses": ["a" * (1 + i % 9) + bad, "bb"]})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def score(url: str, inp: Path, out: Path, *extra: str, timeout: float = RUN_S) -> subprocess.CompletedProcess:
    """`rewardscale score INP -o OUT` on the openai backend at `url` (k = 2, no parse retries)."""
    args = ["score", str(inp), "-o", str(out), "--backend", "openai", "--base-url", url, "--model", "fake"]
    args += ["-k", "2", "--max-retries", "0", "--upstream-timeout", "1", *extra]
    return subprocess.run([sys.executable, *CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def stored(store: Path) -> dict[str, str]:
    with sqlite3.connect(store) as db:
        return dict(db.execute("SELECT key, text FROM samples").fetchall())


def runs(store: Path) -> list[tuple[int, int, int]]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT generated, reused, duplicates FROM runs ORDER BY id").fetchall()


def statuses(out: Path) -> dict[str, list[str]]:
    return {r["id"]: [s["status"] for s in r["samples"]] for r in map(json.loads, out.read_text().splitlines())}


@pytest.fixture
def upstream():
    with FakeUpstream() as up:
        yield up


def test_every_fault_kind_ends_in_a_completed_run_and_a_resume_loses_nothing(upstream, tmp_path):
    upstream.faults = Faults(error=0.1, hang=0.1, malformed=0.15, close=0.1, slow=0.1, hang_s=30, slow_s=3, seed=7)
    inp, out = requests_file(tmp_path / "in.jsonl", 12), tmp_path / "out.jsonl"
    store = Path(f"{out}.samples.sqlite")
    first = score(upstream.url, inp, out, "--upstream-retries", "6")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    for kind in ("ok", "error", "hang", "malformed", "close", "slow"):
        assert upstream.counts[kind] > 0, f"no {kind} fault was injected: {upstream.counts}"
    assert upstream.counts["client_gone"] > 0, "hung and slow replies were abandoned by the client"
    got = statuses(out)
    assert sorted(got) == sorted(f"r{i}" for i in range(12)) and all(len(s) == 2 for s in got.values())
    assert set(s for ss in got.values() for s in ss) <= {"ok", "backend_error"}
    ok = sum(s == "ok" for ss in got.values() for s in ss)
    before = stored(store)
    assert len(before) == ok, "every judged sample is stored, no failed one"

    upstream.faults = Faults()  # the judge recovers: the rerun draws only what is missing
    again = score(upstream.url, inp, out)
    assert again.returncode == 0, again.stderr[-3000:]
    after = stored(store)
    assert len(after) == 24 and all(after[k] == v for k, v in before.items()), "nothing lost, kept verbatim"
    (_, _, dup1), (gen2, reused2, dup2) = runs(store)
    assert (gen2, reused2, dup1, dup2) == (24 - len(before), len(before), 0, 0), "nothing generated twice"
    assert all(s == ["ok", "ok"] for s in statuses(out).values())


@pytest.mark.parametrize("store", [True, False], ids=["store", "no-store"])
def test_a_job_out_of_retries_abstains_and_the_batch_completes(upstream, tmp_path, store):
    """A request whose judge always answers 200 with a bad body: its samples abstain with
    backend_error; the rest of the batch completes, with the store as without it."""
    upstream.faults = Faults(malformed=1.0, only="POISON")
    inp, out = requests_file(tmp_path / "in.jsonl", 6, poison=2), tmp_path / "out.jsonl"
    run = score(upstream.url, inp, out, "--upstream-retries", "2", *([] if store else ["--no-store"]))
    assert run.returncode == 0, run.stderr[-3000:]
    got = statuses(out)
    assert got.pop("r2") == ["backend_error", "backend_error"]
    assert all(s == ["ok", "ok"] for s in got.values())
    row = next(r for r in map(json.loads, out.read_text().splitlines()) if r["id"] == "r2")
    assert row["n_valid"] == 0 and "malformed 200 reply" in row["samples"][0]["note"]
    assert "2 samples abstained" in run.stderr
    if store:
        assert len(stored(Path(f"{out}.samples.sqlite"))) == 10


def test_the_store_does_not_change_what_a_run_does_at_60_percent_5xx(upstream, tmp_path):
    inp = requests_file(tmp_path / "in.jsonl", 10)
    for flag in ([], ["--no-store"]):
        upstream.faults = Faults(error=0.6, seed=3)
        out = tmp_path / f"out{len(flag)}.jsonl"
        run = score(upstream.url, inp, out, "--upstream-retries", "3", *flag)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "every request failed" not in run.stderr
        assert len(statuses(out)) == 10


def test_an_unreachable_or_dead_judge_is_a_clear_error(upstream, tmp_path):
    upstream.faults = Faults(error=1.0)
    inp, out = requests_file(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    run = score(upstream.url, inp, out, "--upstream-retries", "1")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "every request failed" in run.stderr and "HTTP 500" in run.stderr
    assert not out.exists()


def test_kill_9_midway_against_a_faulty_judge_then_resume(upstream, tmp_path):
    upstream.faults = Faults(slow=1.0, slow_s=0.5)  # every reply takes half a second
    inp, out = requests_file(tmp_path / "in.jsonl", 40), tmp_path / "out.jsonl"
    store = Path(f"{out}.samples.sqlite")
    args = ["score", str(inp), "-o", str(out), "--backend", "openai", "--base-url", upstream.url, "--model", "fake"]
    args += ["-k", "2", "--max-retries", "0", "--upstream-timeout", "5"]
    proc = subprocess.Popen([sys.executable, *CLI, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, before = time.monotonic() + RUN_S, {}
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                before = stored(store) if store.exists() else {}
            except sqlite3.OperationalError:  # schema not created yet
                before = {}
            if len(before) >= 8:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None and proc.returncode != -signal.SIGKILL:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "killed midway"
    before = stored(store)
    assert 8 <= len(before) < 80 and not out.exists()

    upstream.faults = Faults(error=0.15, malformed=0.1, close=0.05, seed=5)
    done = score(upstream.url, inp, out, "--upstream-retries", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    after = stored(store)
    assert all(after[k] == v for k, v in before.items()), "stored samples are kept verbatim"
    (_, _, dup1), (gen2, reused2, dup2) = runs(store)
    assert reused2 == len(before) and gen2 == len(after) - len(before) and dup1 == dup2 == 0
