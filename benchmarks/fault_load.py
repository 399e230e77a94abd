"""Fault load on loopback: `rewardscale serve --backend openai` in front of a fake judge that fails
at set rates (5xx, hangs, malformed 200 bodies, closed connections, slow bodies; the fake is
tests/fake_upstream.py in its own process), then `rewardscale score FILE -o` against the same judge.

Server phase: `--clients` threads each send `--calls` /v1/score calls (one GRM request of two
responses, k samples), one after another; every call's latency and status is recorded. Batch
phase: a file of `--requests` requests is scored with the sample store, and the store is checked.
Reported: calls held, p50/p99 latency, errors by status, faults injected (the judge's own counts)
and survived (retried into a judged sample: all but those spent on calls that ran out of
retries), server RSS before and after, and samples lost (calls with no answer, samples missing from an answer,
judged samples missing from the store, samples generated twice): must be 0. The batch phase
scores once (the judge keeps failing at its rates); a sample whose judge call ran out of retries
abstains (backend_error) and is not stored.

Bounded: a fixed number of calls and `--max-seconds` for the whole run; loopback only.

    nice -n 19 python benchmarks/fault_load.py --clients 16 --calls 20 --out benchmarks/results/fault_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server_proc import CLI, server_process  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))] if s else float("nan")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def start_judge(a: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """The fake judge in its own process; its URL once it says READY."""
    cmd = [sys.executable, "-m", "tests.fake_upstream", "--seed", str(a.seed), "--hang-s", "30", "--slow-s", "2"]
    for kind in ("error", "hang", "malformed", "close", "slow"):
        cmd += [f"--{kind}", str(getattr(a, kind))]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"the fake judge did not start: {line!r}")
    return proc, line.split()[1]


def judge_stats(judge_url: str) -> dict:
    return httpx.get(judge_url.removesuffix("/v1") + "/stats", timeout=10).json()


def metric_lines(url: str, prefix: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(prefix)}


def one_call(url: str, i: int, k: int, timeout: float) -> dict:
    """One /v1/score call; what came back."""
    body = {"requests": [{"query": f"question {i}?", "responses": ["a" * (1 + i % 9), "bb"]}], "k": k}
    body["return_samples"] = True
    start = time.monotonic()
    try:
        r = httpx.post(f"{url}/v1/score", json=body, timeout=timeout)
    except httpx.HTTPError as e:
        return {"status": type(e).__name__, "s": time.monotonic() - start, "samples": 0, "judged": 0}
    out = {"status": r.status_code, "s": time.monotonic() - start, "samples": 0, "judged": 0}
    if r.status_code == 200:
        samples = r.json()["results"][0]["samples"]
        out["samples"] = len(samples)
        out["judged"] = sum(s["status"] != "backend_error" for s in samples)
    return out


def server_phase(a: argparse.Namespace, judge_url: str, end: float) -> dict:
    args = [*CLI, "serve", "--backend", "openai", "--base-url", judge_url, "--model", "fake", "-k", str(a.k)]
    args += ["--max-retries", "0", "--timeout", str(a.timeout), "--upstream-timeout", str(a.upstream_timeout)]
    args += ["--upstream-retries", str(a.upstream_retries), "--log-level", "warning"]
    before_faults = judge_stats(judge_url)["counts"]
    with server_process(args) as url:
        rss_before = rss_mib(url.pid)
        with ThreadPoolExecutor(a.clients) as pool:

            def client(c: int) -> list[dict]:
                done = []
                for j in range(a.calls):
                    if time.monotonic() > end:
                        break
                    done.append(one_call(url, c * a.calls + j, a.k, a.timeout + 30))
                return done

            start = time.monotonic()
            calls = [x for xs in pool.map(client, range(a.clients)) for x in xs]
            wall = time.monotonic() - start
        rss_after = rss_mib(url.pid)
        upstream = metric_lines(url, "rewardscale_upstream_")
        health = httpx.get(f"{url}/health", timeout=10).json()
    counts = judge_stats(judge_url)["counts"]
    faults = {k: counts.get(k, 0) - before_faults.get(k, 0) for k in ("error", "hang", "malformed", "close", "slow")}
    statuses: dict[str, int] = {}
    for c in calls:
        statuses[str(c["status"])] = statuses.get(str(c["status"]), 0) + 1
    ok = [c for c in calls if c["status"] == 200]
    lat = [c["s"] for c in ok]
    unanswered = sum(1 for c in calls if not isinstance(c["status"], int))
    missing = sum(a.k - c["samples"] for c in ok)
    return {
        "calls": len(calls),
        "clients": a.clients,
        "wall_s": round(wall, 2),
        "calls_per_s": round(len(calls) / wall, 2) if wall else None,
        "p50_s": round(percentile(lat, 50), 3),
        "p99_s": round(percentile(lat, 99), 3),
        "statuses": statuses,
        "errors": len(calls) - len(ok),
        "samples_judged": sum(c["judged"] for c in ok),
        "samples_abstained": sum(c["samples"] - c["judged"] for c in ok),
        "faults_injected": faults,
        "faults_total": sum(faults.values()),
        # a call that ran out of retries spent upstream_retries + 1 faults; every other fault was retried away
        "faults_survived": sum(faults.values())
        - int(upstream.get("rewardscale_upstream_gave_up_total", 0)) * (a.upstream_retries + 1),
        "upstream_retries": {k: v for k, v in upstream.items() if "retries" in k},
        "upstream_gave_up": upstream.get("rewardscale_upstream_gave_up_total", 0),
        "rss_mib_before": round(rss_before, 1),
        "rss_mib_after": round(rss_after, 1),
        "health_after": {"status": health["status"], **health["upstream"]},
        "samples_lost": unanswered + missing,
    }


def batch_phase(a: argparse.Namespace, judge_url: str, work: Path) -> dict:
    inp, out = work / "requests.jsonl", work / "rewards.jsonl"
    store = Path(f"{out}.samples.sqlite")
    lines = [{"id": f"r{i}", "query": f"batch question {i}?", "responses": ["a" * (1 + i % 9), "bb"]}
             for i in range(a.requests)]  # fmt: skip
    inp.write_text("".join(json.dumps(x) + "\n" for x in lines))
    args = ["score", str(inp), "-o", str(out), "--backend", "openai", "--base-url", judge_url, "--model", "fake"]
    args += ["-k", str(a.k), "--max-retries", "0", "--upstream-timeout", str(a.upstream_timeout)]
    args += ["--upstream-retries", str(a.upstream_retries)]
    start = time.monotonic()
    run = subprocess.run([sys.executable, *CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=a.max_seconds)
    wall = time.monotonic() - start
    if run.returncode != 0:
        return {"rc": run.returncode, "stderr": run.stderr[-2000:]}
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    judged = [s["text"] for r in rows for s in r["samples"] if s["status"] != "backend_error"]
    with sqlite3.connect(store) as db:
        texts = {t for (t,) in db.execute("SELECT text FROM samples")}
        (duplicates,) = db.execute("SELECT duplicates FROM runs").fetchone()
    return {
        "rc": run.returncode,
        "requests": len(rows),
        "samples": sum(len(r["samples"]) for r in rows),
        "samples_judged": len(judged),
        "wall_s": round(wall, 2),
        "stored": len(texts),
        "duplicates": duplicates,
        "samples_abstained": sum(len(r["samples"]) for r in rows) - len(judged),
        "samples_lost": sum(t not in texts for t in judged) + duplicates,  # judged but not kept, or drawn twice
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--calls", type=int, default=20, help="calls per client")
    p.add_argument("--requests", type=int, default=100, help="requests in the batch phase")
    p.add_argument("-k", type=int, default=2)
    p.add_argument("--error", type=float, default=0.05)
    p.add_argument("--hang", type=float, default=0.01)
    p.add_argument("--malformed", type=float, default=0.05)
    p.add_argument("--close", type=float, default=0.02)
    p.add_argument("--slow", type=float, default=0.02)
    p.add_argument("--timeout", type=float, default=10.0, help="server call timeout (s)")
    p.add_argument("--upstream-timeout", type=float, default=1.0)
    p.add_argument("--upstream-retries", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    end = time.monotonic() + a.max_seconds
    judge, judge_url = start_judge(a)
    try:
        server = server_phase(a, judge_url, end)
        with tempfile.TemporaryDirectory() as work:
            batch = batch_phase(a, judge_url, Path(work))
    finally:
        judge.terminate()
        judge.wait(timeout=15)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "fault_rates": {k: getattr(a, k) for k in ("error", "hang", "malformed", "close", "slow")},
        "settings": {
            "k": a.k,
            "timeout": a.timeout,
            "upstream_timeout": a.upstream_timeout,
            "upstream_retries": a.upstream_retries,
        },  # fmt: skip
        "server": server,
        "batch": batch,
        "samples_lost": server["samples_lost"] + batch.get("samples_lost", 0),
    }
    print(json.dumps(report, indent=2))
    if a.out:
        a.out.write_text(json.dumps(report, indent=2) + "\n")
    if report["samples_lost"] or batch.get("rc"):
        sys.exit(1)


if __name__ == "__main__":
    main()
