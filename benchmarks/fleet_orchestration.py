"""Does rewardscale keep a GPU fleet busy? `rewardscale score FILE -o OUT --backend openai` against a
fake fleet on loopback (benchmarks/fake_fleet.py, its own process) that answers with a latency
model (prefill per request, decode per token, a concurrency limit, `n` completions per request)
and counts what it receives.

Runs, same file, same fleet: with the sample store (the default) and with `--no-store`; with
`--baseline REV`, the same two with the code of git revision REV (its `src/` extracted to a
temporary folder, so before/after come from one invocation on one machine state); with
`--also-limit L`, a no-store run against the fleet at limit L (below the client's 16 in flight,
the fleet's queue never empties: whether the client keeps its bound full). Reported per run:
samples/s on the client side (whole process, start to exit) and while the fleet was busy (first
request to last answer), requests in flight versus the fleet's limit (max, time-weighted mean,
share of time full) and outstanding (in flight + queued at the fleet: what the client keeps
sent), seconds to the first request and after the last answer, prefill requests saved by `n`,
rewardscale's CPU time per sample (the client process's user + system time over samples, with
and without the CPU of starting the process and importing rewardscale, measured alone), the
fake fleet's own CPU, and the machine's other load during the run (busy cores from /proc/stat
less the client's and the fleet's CPU). Then the ratios: store/no-store, after/before, and
whether every run wrote the same bytes.

Targets (issue 16): >= 5,000 samples/s, < 1 ms CPU per sample, the fleet's limit always full,
the store costing < 10%. Bounded (`--max-seconds` per run) and loopback only.

    nice -n 19 python benchmarks/fleet_orchestration.py --pairs 2000 -k 8 --baseline df94e53 \\
        --also-limit 12 --out benchmarks/results/fleet_orchestration.json
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import os
import platform
import select
import subprocess
import sys
import tarfile
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


def cpu_jiffies() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (zeros elsewhere)."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def timed(cmd: list[str], max_seconds: float, env: dict) -> tuple[int, float, float, str, float]:
    """(exit status, wall seconds, CPU seconds user+system, stderr tail, monotonic start) of a child."""
    mono = time.monotonic()
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
    return os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, err, mono


def env_for(src: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def one_run(a: argparse.Namespace, url: str, inp: Path, out: Path, store: bool, src: Path, startup_cpu: float,
            limit: int, concurrency: int | None = None) -> dict:  # fmt: skip
    httpx.post(f"{url}/reset", json={"limit": limit}, timeout=10)
    cmd = CLI + ["score", str(inp), "-o", str(out), "-k", str(a.k), "--backend", "openai"]
    cmd += ["--base-url", f"{url}/v1", "--model", "fleet", "--max-tokens", str(max(16, a.tokens))]
    if concurrency:  # the client's requests in flight (default 16); older code has no such flag
        cmd += ["--concurrency", str(concurrency)]
    if not store:
        cmd.append("--no-store")
    load_before = os.getloadavg()
    busy0, total0 = cpu_jiffies()
    rc, wall, cpu, err, mono = timed(cmd, a.max_seconds, env_for(src))
    busy1, total1 = cpu_jiffies()
    stats = httpx.get(f"{url}/stats", timeout=10).json()
    samples = a.pairs * a.k
    fleet_cpu = stats.get("cpu_s", 0.0)
    first, last = stats.get("first_monotonic"), stats.get("last_monotonic")
    run = {
        "code": str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else f"baseline {a.baseline}",
        "store": store,
        "fleet_limit": limit,
        "client_concurrency": concurrency or 16,
        "exit_status": rc,
        "timed_out": wall >= a.max_seconds,
        "samples": samples,
        "wall_s": wall,
        "samples_per_s_client": samples / wall,
        "samples_per_s_fleet_busy": stats["samples_per_s_server"],
        "to_first_request_s": first - mono if first is not None else None,
        "after_last_answer_s": wall - (last - mono) if last is not None else None,
        "cpu_s": cpu,
        "cpu_ms_per_sample": 1000 * cpu / samples,
        "cpu_ms_per_sample_after_startup": 1000 * max(0.0, cpu - startup_cpu) / samples,
        "fleet_cpu_s": fleet_cpu,
        "fleet_cpu_cores_while_busy": fleet_cpu / stats["busy_seconds"] if stats["busy_seconds"] else None,
        "machine": {
            "load_avg_before": load_before,
            "busy_cores": (busy1 - busy0) / wall,
            "other_busy_cores": max(0.0, (busy1 - busy0) - cpu - fleet_cpu) / wall,
            "cores": (total1 - total0) / wall,
        },
        "fleet": {k: v for k, v in stats.items() if k not in ("timeline", "first_monotonic", "last_monotonic")},
        "in_flight_timeline": stats["timeline"][:: max(1, len(stats["timeline"]) // 60)],
    }
    if rc != 0:
        run["stderr_tail"] = err
    return run


def extract_src(rev: str, into: Path) -> Path:
    """`src/` of git revision `rev`, written under `into`; the folder to put on PYTHONPATH."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def ratio(x: float | None, y: float | None) -> float | None:
    return x / y if x is not None and y else None


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
    p.add_argument("--baseline", default=None, help="a git revision: also run its code (before/after)")
    p.add_argument("--also-limit", type=int, action="append", default=[], help="a no-store run at this fleet limit")
    p.add_argument(
        "--also-concurrency", type=int, action="append", default=[],
        help="a no-store run with the client's --concurrency at this value (fleet limit --limit)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    fleet, url = start_fleet(a)
    outputs: dict[str, Path] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            inp = tmp / "pairs.jsonl"
            write_pairs(inp, a.pairs)
            codes = {"": ROOT / "src"}
            if a.baseline:
                codes["baseline_"] = extract_src(a.baseline, tmp / "baseline")
            startup = {}
            for prefix, src in codes.items():
                startup[prefix] = timed(CLI + ["--help"], 60, env_for(src))[2]
            runs = {}
            for prefix, src in codes.items():
                for store in (False, True):
                    name = prefix + ("store" if store else "no_store")
                    outputs[name] = tmp / f"{name}.jsonl"
                    runs[name] = one_run(a, url, inp, outputs[name], store, src, startup[prefix], a.limit)
            for limit in a.also_limit:
                name = f"no_store_limit{limit}"
                outputs[name] = tmp / f"{name}.jsonl"
                runs[name] = one_run(a, url, inp, outputs[name], False, codes[""], startup[""], limit)
            for conc in a.also_concurrency:
                name = f"no_store_concurrency{conc}"
                outputs[name] = tmp / f"{name}.jsonl"
                runs[name] = one_run(a, url, inp, outputs[name], False, codes[""], startup[""], a.limit, conc)
            first = next(iter(outputs.values()))
            identical = all(o.exists() and filecmp.cmp(first, o, shallow=False) for o in outputs.values())
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
        "startup_cpu_s": startup[""],
        "baseline_startup_cpu_s": startup.get("baseline_"),
        "outputs_identical": identical,
        "runs": runs,
        "store_cost": {
            "rate_ratio_store_over_no_store": s["samples_per_s_client"] / ns["samples_per_s_client"],
            "busy_rate_ratio": ratio(s["samples_per_s_fleet_busy"], ns["samples_per_s_fleet_busy"]),
            "cpu_ratio_store_over_no_store": s["cpu_ms_per_sample"] / ns["cpu_ms_per_sample"],
        },
    }
    if a.baseline:
        result["after_over_before"] = {
            f"{kind}_{what}": ratio(runs[kind][key], runs["baseline_" + kind][key])
            for kind in ("no_store", "store")
            for what, key in (("rate", "samples_per_s_client"), ("busy_rate", "samples_per_s_fleet_busy"),
                              ("cpu_per_sample", "cpu_ms_per_sample"))
        }  # fmt: skip
    for name, r in runs.items():
        f, m = r["fleet"], r["machine"]
        print(
            f"{name:19s} rc={r['exit_status']} {r['samples_per_s_client']:6.0f} samples/s client "
            f"({r['samples_per_s_fleet_busy']:6.0f} while busy), CPU {r['cpu_ms_per_sample']:.3f} ms/sample "
            f"({r['cpu_ms_per_sample_after_startup']:.3f} after startup), in flight max {f['max_in_flight']}/"
            f"{f['limit']} mean {f['mean_in_flight']:.1f} (outstanding {f.get('mean_outstanding', 0):.1f}), "
            f"full {100 * f['full_fraction']:.0f}% of busy time; fleet CPU {r['fleet_cpu_s']:.2f} s, "
            f"other load {m['other_busy_cores']:.2f} cores"
        )
    c = result["store_cost"]
    print(
        f"store / no-store: rate {c['rate_ratio_store_over_no_store']:.2f}x, "
        f"CPU per sample {c['cpu_ratio_store_over_no_store']:.2f}x; fleet capacity {capacity:.0f} samples/s; "
        f"outputs identical: {identical}"
    )
    if a.baseline:
        b = result["after_over_before"]
        print(
            f"after / before ({a.baseline}): no-store rate {b['no_store_rate']:.2f}x, store rate "
            f"{b['store_rate']:.2f}x, CPU per sample {b['no_store_cpu_per_sample']:.2f}x / "
            f"{b['store_cpu_per_sample']:.2f}x"
        )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
