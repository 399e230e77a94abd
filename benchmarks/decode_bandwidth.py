"""Single-sequence decode speed as a fraction of this machine's memory-bandwidth ceiling.

Decoding one sequence reads every weight once per token, so tokens/s can never exceed
bandwidth / model bytes. This script measures both in one process: the read bandwidth of a
buffer far larger than the caches (numpy sums, one thread per core, as llama.cpp reads), then
the embedded judge's decode tokens/s on one sequence (llama.cpp's own timings, prefill excluded),
and reports decode tokens/s x model bytes / bandwidth: how close the engine is to the ceiling.

    python benchmarks/decode_bandwidth.py --out benchmarks/results/decode_bandwidth.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np


def read_bandwidth(gib: float, threads: int, repeats: int) -> float:
    """Best of `repeats` reads of a `gib`-GiB float64 buffer split over `threads` threads, bytes/s."""
    buf = np.ones(int(gib * 2**30 // 8))
    parts = np.array_split(buf, threads)
    best = 0.0
    for _ in range(repeats):
        barrier = threading.Barrier(threads + 1)

        def work(part: np.ndarray, start: threading.Barrier = barrier) -> None:
            start.wait()
            part.sum()

        pool = [threading.Thread(target=work, args=(p,)) for p in parts]
        for t in pool:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in pool:
            t.join()
        best = max(best, buf.nbytes / (time.perf_counter() - t0))
    return best


def decode_speed(tokens: int, threads: int, runs: int) -> tuple[float, int, str]:
    """Best decode tokens/s of one sequence (llama.cpp timings), the model's file size, and the
    build's system info."""
    import xllamacpp as xlc
    from llama_engine import llama_server, model_file

    from rewardscale import models

    path = model_file(models.BASE_MODEL)
    server = llama_server(models.BASE_MODEL, 1, ctx_per_slot=2048, threads=threads)
    best = 0.0
    for run in range(runs):
        body = {
            "messages": [{"role": "user", "content": f"[run {run}] Write a long story about a lighthouse keeper."}],
            "seed": run,
            "temperature": 0.5,
            "max_tokens": tokens,
            "ignore_eos": True,
        }
        out = server.handle_chat_completions(body)
        best = max(best, float((out.get("timings") or {}).get("predicted_per_second", 0.0)))
    return best, path.stat().st_size, xlc.get_system_info()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0, help="Size of the bandwidth buffer (>> last-level cache).")
    ap.add_argument("--tokens", type=int, default=128, help="Tokens decoded per run.")
    ap.add_argument("--runs", type=int, default=3, help="Runs of each measurement (the best counts).")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    bandwidth = read_bandwidth(args.gib, args.threads, args.runs)
    tok_s, model_bytes, system = decode_speed(args.tokens, args.threads, args.runs)
    ceiling = bandwidth / model_bytes
    result = {
        "benchmark": "decode_bandwidth",
        "command": "python benchmarks/decode_bandwidth.py "
        + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v is not None),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "llama_cpp_system_info": system,
        "read_bandwidth_gb_s": bandwidth / 1e9,
        "model_bytes": model_bytes,
        "ceiling_tokens_per_s": ceiling,
        "decode_tokens_per_s": tok_s,
        "fraction_of_ceiling": tok_s / ceiling,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
