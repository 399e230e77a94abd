"""kill -9 a REAL batch scoring run midway, rerun it, and check nothing was lost or generated twice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from rewardscale import models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # three real runs, each bounded by RUN_S

REQUESTS = [
    {"id": "a", "query": "What is 2+2?", "responses": ["4", "5"]},
    {"id": "b", "query": "Capital of France?", "responses": ["Lyon", "Paris"]},
    {"id": "c", "query": "Opposite of hot?", "responses": ["cold", "warm"]},
    {"id": "d", "query": "Largest planet?", "responses": ["Jupiter", "Mars"]},
]
K = 2
TOTAL = len(REQUESTS) * K  # --max-retries 0: exactly one generation per planned sample
RUN_S = 600  # one run on the fixture model takes about a minute on 2 busy cores; a hung one fails


def command(inp, out):
    return [
        sys.executable, "-c", "from rewardscale.cli import app; app()",
        "score", str(inp), "-o", str(out), "-k", str(K),
        "--model", models.FIXTURE_MODEL, "--max-tokens", "40", "--parallel", "2", "--max-retries", "0",
        "--threads", "1",
    ]  # fmt: skip


def rows(store):
    with sqlite3.connect(store) as db:
        return dict(db.execute("SELECT key, text FROM samples").fetchall())


def runs(store):
    with sqlite3.connect(store) as db:
        return db.execute("SELECT generated, reused, duplicates FROM runs ORDER BY id").fetchall()


def test_kill_9_midway_then_resume(tmp_path):
    if not models.is_assembled(models.FIXTURE_MODEL):
        models.model_path(models.FIXTURE_MODEL)
    inp, out = tmp_path / "requests.jsonl", tmp_path / "rewards.jsonl"
    store = tmp_path / "rewards.jsonl.samples.sqlite"
    inp.write_text("".join(json.dumps(r) + "\n" for r in REQUESTS))

    proc = subprocess.Popen(command(inp, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stored, deadline = 0, time.monotonic() + RUN_S
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=30)
            pytest.fail(f"the first run stored {stored} samples in {RUN_S}s without finishing")
        if store.exists():
            try:
                stored = len(rows(store))
            except sqlite3.OperationalError:  # schema not created yet
                stored = 0
        if stored >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait(timeout=30)
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"the run ended before it could be killed (rc {proc.returncode}): {proc.stdout.read()[-2000:]}")
    before = rows(store)
    assert 2 <= len(before) < TOTAL, "killed midway: some but not all samples stored"
    assert not out.exists(), "no half-written output after kill -9"

    done = subprocess.run(command(inp, out), capture_output=True, text=True, timeout=RUN_S)
    assert done.returncode == 0, done.stderr
    after = rows(store)
    assert len(after) == TOTAL, "nothing lost"
    assert all(after[k] == v for k, v in before.items()), "stored samples are kept verbatim"
    (_, _, dup1), (gen2, reused2, dup2) = runs(store)
    assert gen2 == TOTAL - len(before) and reused2 == len(before), "only the missing samples were generated"
    assert dup1 == dup2 == 0, "no key generated twice"

    rewards = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rewards] == [r["id"] for r in REQUESTS]
    texts = sorted(s["text"] for r in rewards for s in r["samples"])
    assert texts == sorted(after.values()), "the output uses exactly the stored samples"

    first = out.read_text()
    # answered from the store: the engine loads and closes without serving (close used to hang here)
    again = subprocess.run(command(inp, out), capture_output=True, text=True, timeout=RUN_S)
    assert again.returncode == 0 and runs(store)[-1][0] == 0, "a finished run generates nothing more"
    assert out.read_text() == first, "rerunning gives the identical output"
