"""Does rewardscale keep a GPU fleet busy? `rewardscale score FILE -o OUT --backend openai` against a
fake fleet on loopback (benchmarks/fake_fleet.py, its own process) that answers with a latency
model (prefill per request, decode per token, a concurrency limit, `n` completions per request)
and counts what it receives.

One run each, same file, same fleet: with the sample store (the default) and with `--no-store`.
Reported per run: samples/s on the client side (whole process, start to exit) and while the
fleet was busy (first request to last answer), requests in flight versus the fleet's limit (max,
time-weighted mean, share of time full), prefill requests saved by `n`, and rewardscale's CPU
time per sample (the client process's user + system time over samples, with and without the
CPU of starting the process and importing rewardscale, measured alone). Then the store's cost:
the store/no-store ratio of samples/s and of CPU per sample.

Targets (issue 16): >= 5,000 samples/s, < 1 ms CPU per sample, the fleet's limit always full,
the store costing < 10%. Bounded (`--max-seconds` per run) and loopback only.

    nice -n 19 python benchmarks/fleet_orchestration.py --pairs 500 -k 8 \\
        --out benchmarks/results/fleet_orchestration.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from rewardscale.cli import app; app()"]


def start_fleet(a: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """The fake fleet in its own process; its base URL once it prints READY."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "fake_fleet.py"), "--limit", str(a.limit)]
    cmd += ["--prefill-ms", str(a.prefill_ms), "--decode-ms", str(a.decode_ms), "--tokens", str(a.tokens)]
    if a.no_n:
        cmd.append("--no-n")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit(f"the fake fleet did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def write_pairs(path: Path, pairs: int) -> None:
    """`pairs` two-response requests of a few hundred characters each, all different."""
    with open(path, "w") as f:
        for i in range(pairs):
            q = f"Question {i}: explain in two sentences why the sky looks blue at noon and red at dusk."
            good = f"Answer {i}: sunlight scatters off air molecules; blue light scatters most (Rayleigh)."
            bad = f"Answer {i}: the sky reflects the ocean."
            f.write(json.dumps({"id": f"p{i}", "query": q, "responses": [good, bad]}) + "\n")


def timed(cmd: list[str], max_seconds: float, env: dict) -> tuple[int, float, float, str]:
    """(exit status, wall seconds, CPU seconds user+system, stderr tail) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    deadline = start + max_seconds
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.01)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")[-1500:] if proc.stderr else ""
    return os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, err


def one_run(a: argparse.Namespace, url: str, inp: Path, out: Path, store: bool, startup_cpu: float) -> dict:
    httpx.post(f"{url}/reset", timeout=10)
    cmd = CLI + ["score", str(inp), "-o", str(out), "-k", str(a.k), "--backend", "openai"]
    cmd += ["--base-url", f"{url}/v1", "--model", "fleet", "--max-tokens", str(max(16, a.tokens))]
    if not store:
        cmd.append("--no-store")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rc, wall, cpu, err = timed(cmd, a.max_seconds, env)
    stats = httpx.get(f"{url}/stats", timeout=10).json()
    samples = a.pairs * a.k
    run = {
        "store": store,
        "exit_status": rc,
        "timed_out": wall >= a.max_seconds,
        "samples": samples,
        "wall_s": wall,
        "samples_per_s_client": samples / wall,
        "samples_per_s_fleet_busy": stats["samples_per_s_server"],
        "cpu_s": cpu,
        "cpu_ms_per_sample": 1000 * cpu / samples,
        "cpu_ms_per_sample_after_startup": 1000 * max(0.0, cpu - startup_cpu) / samples,
        "fleet": {k: v for k, v in stats.items() if k != "timeline"},
        "in_flight_timeline": stats["timeline"][:: max(1, len(stats["timeline"]) // 60)],
    }
    if rc != 0:
        run["stderr_tail"] = err
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("-k", type=int, default=8)
    p.add_argument("--limit", type=int, default=16, help="fleet concurrency limit (requests); client default is 16")
    p.add_argument("--prefill-ms", type=float, default=2.0)
    p.add_argument("--decode-ms", type=float, default=0.1)
    p.add_argument("--tokens", type=int, default=64, help="tokens per completion")
    p.add_argument("--no-n", action="store_true", help="a fleet that ignores n (one choice per request)")
    p.add_argument("--max-seconds", type=float, default=300, help="bound on each scoring run")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    fleet, url = start_fleet(a)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            inp = tmp / "pairs.jsonl"
            write_pairs(inp, a.pairs)
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            _, _, startup_cpu, _ = timed(CLI + ["--help"], 60, env)
            runs = {
                "no_store": one_run(a, url, inp, tmp / "a.jsonl", False, startup_cpu),
                "store": one_run(a, url, inp, tmp / "b.jsonl", True, startup_cpu),
            }
    finally:
        fleet.kill()
        fleet.wait(timeout=10)
    s, ns = runs["store"], runs["no_store"]
    capacity = a.limit * (1 if a.no_n else 4) / ((a.prefill_ms + a.tokens * a.decode_ms) / 1000)
    result = {
        "benchmark": "fleet_orchestration",
        "command": " ".join(["python", "benchmarks/fleet_orchestration.py", *sys.argv[1:]]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "settings": vars(a) | {"out": str(a.out) if a.out else None},
        "fleet_capacity_samples_per_s_at_n4": capacity,
        "startup_cpu_s": startup_cpu,
        "runs": runs,
        "store_cost": {
            "rate_ratio_store_over_no_store": s["samples_per_s_client"] / ns["samples_per_s_client"],
            "busy_rate_ratio": s["samples_per_s_fleet_busy"] / ns["samples_per_s_fleet_busy"]
            if ns["samples_per_s_fleet_busy"]
            else None,
            "cpu_ratio_store_over_no_store": s["cpu_ms_per_sample"] / ns["cpu_ms_per_sample"],
        },
    }
    for name, r in runs.items():
        f = r["fleet"]
        print(
            f"{name:9s} rc={r['exit_status']} {r['samples_per_s_client']:7.0f} samples/s client "
            f"({r['samples_per_s_fleet_busy']:7.0f} while busy), CPU {r['cpu_ms_per_sample']:.3f} ms/sample "
            f"({r['cpu_ms_per_sample_after_startup']:.3f} after startup), in flight max {f['max_in_flight']}/"
            f"{f['limit']} mean {f['mean_in_flight']:.1f}, full {100 * f['full_fraction']:.0f}% of busy time, "
            f"prefills saved by n {f['prefills_saved_by_n']} of {f['samples']}"
        )
    c = result["store_cost"]
    print(
        f"store / no-store: rate {c['rate_ratio_store_over_no_store']:.2f}x, "
        f"CPU per sample {c['cpu_ratio_store_over_no_store']:.2f}x; fleet capacity {capacity:.0f} samples/s"
    )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
