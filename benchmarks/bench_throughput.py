"""Throughput of k samples decoded together vs one sequence, on the embedded judge (issue 2).

Measures, in one process on the same llama.cpp engine:
  * baseline: one GRM sample (one prompt, one sequence), generated tokens / second;
  * Voting@k for one 2-response query (k sequences, shared prefill per permutation),
    aggregate generated tokens / second;
  * the share of wall time spent outside the backend (plan, render, parse, vote).
Optionally (--llama-cpp-python) the same single sequence on llama-cpp-python, to compare runtimes.

    python benchmarks/bench_throughput.py -k 8 --max-tokens 384
"""

from __future__ import annotations

import argparse
import json
import os
import time

from rewardscale import GRM, Request, Sampling, models
from rewardscale.backends.base import GenerationRequest
from rewardscale.backends.llamacpp import LlamaCppBackend
from rewardscale.template import render

QUERIES = [
    (
        "What is the capital of Australia?",
        ["Canberra is the capital of Australia.", "Sydney is the capital of Australia."],
    ),
    ("How many legs does a spider have?", ["A spider has eight legs.", "A spider has six legs."]),
    ("What is the boiling point of water at sea level in Celsius?", ["100 degrees Celsius.", "50 degrees Celsius."]),
]


class TimedBackend:
    """Wraps a backend and adds up the wall time spent inside `generate` and the tokens made."""

    def __init__(self, inner):
        self.inner, self.model_id, self.seconds, self.tokens = inner, inner.model_id, 0.0, 0

    def generate(self, requests, sampling, progress=None):
        t = time.perf_counter()
        out = self.inner.generate(requests, sampling, progress)
        self.seconds += time.perf_counter() - t
        self.tokens += sum(c.tokens for comps in out for c in comps)
        return out

    def close(self):
        self.inner.close()


def single_sequence(backend: TimedBackend, query, sampling: Sampling, seed: int) -> float:
    request = Request.make(*query)
    job = GenerationRequest(tuple(render(request, (0, 1))), n=1, seed=seed)
    backend.seconds = backend.tokens = 0
    backend.generate([job], sampling)
    return backend.tokens / backend.seconds


def llama_cpp_python_single(path, query, sampling: Sampling, threads: int) -> float | None:
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=str(path), n_ctx=4096, n_threads=threads, verbose=False)
    messages = render(Request.make(*query), (0, 1))
    t = time.perf_counter()
    out = llm.create_chat_completion(messages, temperature=sampling.temperature, max_tokens=sampling.max_tokens, seed=3)
    return out["usage"]["completion_tokens"] / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--llama-cpp-python", action="store_true", help="also time llama-cpp-python on one sequence")
    args = ap.parse_args()

    sampling = Sampling(temperature=0.5, max_tokens=args.max_tokens)
    path = models.model_path(models.BASE_MODEL)
    backend = TimedBackend(LlamaCppBackend(path, parallel=args.k, threads=args.threads))
    single_sequence(backend, QUERIES[2], Sampling(max_tokens=8), seed=0)  # warm-up

    base1 = single_sequence(backend, QUERIES[0], sampling, seed=1)
    grm = GRM(backend, sampling=sampling, max_retries=0)
    backend.seconds = backend.tokens = 0
    t = time.perf_counter()
    reward = grm.score(*QUERIES[1], k=args.k)
    wall = time.perf_counter() - t
    batched = backend.tokens / backend.seconds
    inside = backend.seconds  # read before the next baseline resets the counters
    base2 = single_sequence(backend, QUERIES[2], sampling, seed=2)
    baseline = (base1 + base2) / 2
    result = {
        "k": args.k,
        "threads": args.threads,
        "single_sequence_tok_s": round(baseline, 1),
        "k_sequences_tok_s": round(batched, 1),
        "ratio": round(batched / baseline, 2),
        "outside_backend_share": round((wall - inside) / wall, 5),
        "wall_s": round(wall, 1),
        "valid_samples": reward.n_valid,
    }
    backend.close()
    if args.llama_cpp_python:
        lcp = llama_cpp_python_single(path, QUERIES[0], sampling, args.threads)
        result["llama_cpp_python_single_tok_s"] = None if lcp is None else round(lcp, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
