"""Load test of `rewardscale serve` on loopback: N concurrent clients, with dynamic batching and
without (batch size 1 and one worker: one request at a time), in ONE run on the same model and
engine settings.

For each mode it starts the real server (a `rewardscale serve` subprocess), waits for /health,
runs `--clients` threads that each send `--per-client` /v1/score calls one after another (one
GRM request of two responses per call), and records every call's latency and status. Bounded:
a fixed number of calls, and `--time-limit` seconds per mode (calls still running then count as
errors). Loopback only.

    python benchmarks/load_test.py                       # embedded 1.5B judge, k=2, 8x2 calls
    python benchmarks/load_test.py --model qwen2.5-coder-0.5b-instruct-q4_k_m --max-tokens 96

Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

PAIRS = [
    ("What is 17*23?", "17*23 = 391.", "17*23 = 401."),
    ("Name the capital of Australia.", "Canberra.", "Sydney."),
    ("Is 91 a prime number?", "No: 91 = 7 * 13.", "Yes, 91 is prime."),
    ("How many legs does a spider have?", "Eight.", "Six."),
    ("What is the boiling point of water at sea level in Celsius?", "100 degrees Celsius.", "90 degrees Celsius."),
    ("Reverse the string 'abc'.", "'cba'", "'bca'"),
    ("What is the square root of 144?", "12.", "14."),
    ("Which planet is closest to the Sun?", "Mercury.", "Venus."),
]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, max_batch: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable, "-c", "from rewardscale.cli import app; app()", "serve",
        "--port", str(port), "-k", str(args.k), "--max-tokens", str(args.max_tokens),
        "--parallel", str(args.parallel), "--max-batch", str(max_batch), "--max-retries", "0",
        "--timeout", str(args.time_limit), "--log-level", "warning",
    ]  # fmt: skip
    if max_batch == 1:  # no batching: one request at a time (the server's workers would run 4 side by side)
        cmd += ["--workers", "1"]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    signal.signal(signal.SIGTERM, lambda *_: (proc.terminate(), sys.exit(143)))  # stop the server with us
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not come up in 300 s")


def scrape(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def warm_up(url: str, args: argparse.Namespace) -> None:
    """Outside the measurement: one call (page cache, first-prompt costs), or with `--warm-slots`
    one GRM request per client at once, questions the clients never ask, so each mode starts in
    its steady state: batched, every slot a request lands in holds the template (llama.cpp hands a
    cached prompt only to a slot that holds one: `benchmarks/prompt_cache_slots.py`); unbatched,
    the slot it reuses does."""
    if not args.warm_slots:
        httpx.post(url + "/v1/score", json={"requests": [{"query": "Hi", "responses": ["Hello"]}], "k": 1},
                   timeout=args.time_limit)  # fmt: skip
        return

    from batch_vs_sequential import arithmetic  # a sibling script: the same warm-up questions

    def one(request) -> None:
        httpx.post(url + "/v1/score", json={"requests": [request.to_dict()]}, timeout=args.time_limit)

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(one, arithmetic(args.clients, 0)))


def run_mode(args: argparse.Namespace, name: str, max_batch: int, logdir: Path) -> dict:
    proc, url = start_server(args, max_batch, logdir / f"server-{name}.log")
    try:
        warm_up(url, args)
        before = scrape(url)
        deadline = time.monotonic() + args.time_limit

        def client(c: int) -> list[tuple[float, int, str]]:
            calls = []
            with httpx.Client(timeout=args.time_limit) as http:
                for j in range(args.per_client):
                    q, a, b = PAIRS[(c * args.per_client + j) % len(PAIRS)]
                    left = deadline - time.monotonic()
                    if left <= 0:
                        calls.append((0.0, 0, "time limit"))
                        continue
                    t = time.monotonic()
                    try:
                        r = http.post(url + "/v1/score", json={"requests": [{"query": q, "responses": [a, b]}]},
                                      timeout=left)  # fmt: skip
                        calls.append((time.monotonic() - t, r.status_code, "" if r.status_code == 200 else r.text))
                    except httpx.HTTPError as e:
                        calls.append((time.monotonic() - t, 0, repr(e)))
            return calls

        load_before = os.getloadavg()[0]
        start = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [c for calls in pool.map(client, range(args.clients)) for c in calls]
        wall = time.monotonic() - start
        load_after = os.getloadavg()[0]
        after = scrape(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ok = [lat for lat, code, _ in results if code == 200]
    errors = [(code, msg[:200]) for _, code, msg in results if code != 200]
    batches = after["rewardscale_batches_total"] - before["rewardscale_batches_total"]
    return {
        "mode": name,
        "max_batch": max_batch,
        "calls": len(results),
        "ok": len(ok),
        "errors": len(errors),
        "error_samples": errors[:3],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 4),
        "p50_s": round(percentile(ok, 50), 2) if ok else None,
        "p99_s": round(percentile(ok, 99), 2) if ok else None,
        "mean_s": round(statistics.mean(ok), 2) if ok else None,
        "backend_calls": int(batches),
        "mean_batch": round((len(ok) / batches) if batches else 0, 2),
        "parse_failure_rate": round(after["rewardscale_parse_failure_rate"], 3),
        "load_avg_1m": [round(load_before, 2), round(load_after, 2)],  # other work on the machine
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-client", type=int, default=2)
    p.add_argument("-k", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=192)
    p.add_argument("--parallel", type=int, default=16, help="llama.cpp slots (the same in both modes)")
    p.add_argument("--max-batch", type=int, default=16, help="batched mode's max batch")
    p.add_argument("--model", default=None, help="embedded model name or GGUF (default: the 1.5B judge)")
    p.add_argument("--time-limit", type=float, default=600, help="seconds per mode")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--warm-slots", action="store_true", help="start each mode in its steady state (see warm_up)")
    args = p.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="rewardscale-load-"))
    runs = [run_mode(args, "batched", args.max_batch, logdir), run_mode(args, "unbatched", 1, logdir)]
    batched, unbatched = runs
    ratio = batched["throughput_rps"] / unbatched["throughput_rps"] if unbatched["throughput_rps"] else None
    report = {
        "setup": {
            "model": args.model or "the embedded default judge (with its judge settings)",
            "warm_slots": args.warm_slots,
            "clients": args.clients,
            "calls_per_client": args.per_client,
            "k": args.k,
            "max_tokens": args.max_tokens,
            "parallel": args.parallel,
            "responses_per_request": 2,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        },
        "runs": runs,
        "throughput_ratio_batched_over_unbatched": None if ratio is None else round(ratio, 2),
    }
    header = f"{'mode':<10} {'calls':>5} {'errors':>6} {'wall s':>7} {'req/s':>7} {'p50 s':>6} {'p99 s':>6} "
    print(header + f"{'batches':>7} {'mean batch':>10} {'parse fail':>10}")
    for r in runs:
        print(
            f"{r['mode']:<10} {r['calls']:>5} {r['errors']:>6} {r['wall_s']:>7} {r['throughput_rps']:>7} "
            f"{r['p50_s']!s:>6} {r['p99_s']!s:>6} {r['backend_calls']:>7} {r['mean_batch']:>10} "
            f"{r['parse_failure_rate']:>10}"
        )
    print(f"throughput ratio, batched / unbatched: {report['throughput_ratio_batched_over_unbatched']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
