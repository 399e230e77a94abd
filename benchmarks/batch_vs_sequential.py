"""Throughput: batching across requests versus one request at a time, on the embedded judge.

Same GRM, same requests, same k and token limit, one loaded model; first all requests in one
`score_batch` call (their prompts decode together in llama.cpp's parallel slots), then the
requests one `score` call at a time. Prints generated tokens/s and requests/s for both and the
ratio. Run on an otherwise idle machine; the numbers are only comparable within one run.

`--warm-slots` measures the steady state of a server instead of a fresh engine: every slot first
holds some GRM prompt (llama.cpp hands a cached template only to a slot that holds a prompt:
`benchmarks/prompt_cache_slots.py`), and each arm scores requests of its own (arithmetic pairs,
so no arm finds the other's prompts cached). Without it, the batched arm runs on empty slots
(each prefills the whole template) and the sequential arm after it on slots the batched arm
filled.

    python benchmarks/batch_vs_sequential.py --requests 8 -k 2 --max-tokens 96
    python benchmarks/batch_vs_sequential.py --requests 8 -k 2 --max-tokens 96 --warm-slots
"""

from __future__ import annotations

import argparse
import json
import time

from rewardscale import GRM, Request, Sampling
from rewardscale.backends import make_backend

PAIRS = [
    ("What is 17*23?", "391", "401"),
    ("Capital of Australia?", "Canberra.", "Sydney."),
    ("Name a noble gas.", "Neon.", "Nitrogen."),
    ("How many minutes are in an hour?", "60", "100"),
    ("Which is larger, 0.5 or 0.45?", "0.5", "0.45"),
    ("Opposite of 'early'?", "Late.", "Soon."),
    ("What is H2O?", "Water.", "Salt."),
    ("Chemical symbol for iron?", "Fe", "Ir"),
    ("How many continents are there?", "Seven.", "Nine."),
    ("Square root of 49?", "7", "9"),
    ("Author of '1984'?", "George Orwell.", "Aldous Huxley."),
    ("Freezing point of water in Fahrenheit?", "32 F", "0 F"),
]


def arithmetic(count: int, offset: int) -> list[Request]:
    """`count` different pairs of the same shape (right and wrong product), disjoint by offset."""
    out = []
    for i in range(offset, offset + count):
        a, b = 13 + 7 * i, 21 + 3 * i
        out.append(Request.make(f"What is {a}*{b}?", [str(a * b), str(a * b + 10)]))
    return out


class Counting:
    """Backend wrapper that counts generated tokens."""

    def __init__(self, backend):
        self.backend, self.model_id, self.tokens = backend, backend.model_id, 0

    def generate(self, requests, sampling, progress=None):
        out = self.backend.generate(requests, sampling, progress)
        self.tokens += sum(c.tokens for comps in out for c in comps)
        return out

    def close(self):
        self.backend.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="embedded model name or GGUF path (default: the 1.5B judge)")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("-k", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--warm-slots", action="store_true", help="every slot holds a GRM prompt first (steady state)")
    ap.add_argument("--out", help="also write the result here (JSON)")
    args = ap.parse_args()
    backend = Counting(make_backend("llamacpp", model=args.model, parallel=args.parallel))
    grm = GRM(backend, sampling=Sampling(max_tokens=args.max_tokens), max_retries=0)
    result = {"requests": args.requests, "k": args.k, "max_tokens": args.max_tokens, "parallel": args.parallel}
    if args.warm_slots:
        t = time.perf_counter()
        GRM(backend, sampling=Sampling(max_tokens=1), max_retries=0).score_batch(arithmetic(args.parallel, 0), k=1)
        result["warm_slots_seconds"] = round(time.perf_counter() - t, 1)
        sets = {"batched": arithmetic(args.requests, 100), "sequential": arithmetic(args.requests, 200)}
    else:
        grm.score("warm up", ["ok"], k=1)
        same = [Request.make(q, [a, b]) for q, a, b in (PAIRS * 4)[: args.requests]]
        sets = {"batched": same, "sequential": same}
    for mode in ("batched", "sequential"):
        requests = sets[mode]
        backend.tokens = 0
        t = time.perf_counter()
        if mode == "batched":
            grm.score_batch(requests, k=args.k)
        else:
            for r in requests:
                grm.score(r, k=args.k)
        wall = time.perf_counter() - t
        result[mode] = {
            "seconds": round(wall, 1),
            "tokens": backend.tokens,
            "tokens_per_s": round(backend.tokens / wall, 2),
        }
        result[mode]["requests_per_min"] = round(60 * len(requests) / wall, 2)
        print(mode, result[mode], flush=True)
    b, s = result["batched"], result["sequential"]
    result["speedup_tokens_per_s"] = round(b["tokens_per_s"] / s["tokens_per_s"], 2)
    result["speedup_wall"] = round(s["seconds"] / b["seconds"], 2)
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            f.write(json.dumps(result, indent=2) + "\n")
    grm.close()


if __name__ == "__main__":
    main()
