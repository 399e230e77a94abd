"""Forced verdicts and expected scores, measured on long-input pairs with the embedded judge.

One run (forcing on, expected mode) gives, on the same samples: the verdict rate before forcing
(samples with a verdict of their own) and after, the wall time the verdict passes cost next to
generation, the tie rate of integer vs expected scores, and Voting@k accuracy of both modes
(ties count 1/#tied). Pairs are scored a few at a time and each batch is appended to the output,
so a run cut short still leaves its figures.

    python benchmarks/long_pairs.py --n 24 -o benchmarks/data/long_pairs.jsonl
    python benchmarks/bench_verdict.py benchmarks/data/long_pairs.jsonl -k 2 --out /tmp/verdict.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from rewardscale import GRM, Request, Sampling
from rewardscale.template import parse
from rewardscale.verdict import forcing_prefix
from rewardscale.verdict_report import verdict_report
from rewardscale.vote import totals, win_probability


class Timed:
    """Delegates to a backend and adds up the seconds spent in generation, in forcing verdicts
    (samples that had none) and in re-decoding valid verdicts for their logprobs (expected mode),
    the last two as separate backend calls so each is timed alone."""

    def __init__(self, backend):
        self.inner = backend
        self.model_id = backend.model_id
        # the engine's capabilities (slot groups included, as users get them); no generate_each here
        self.capabilities = dataclasses.replace(backend.capabilities, reports_each=False)
        self.generate_s = self.force_s = self.expected_s = 0.0
        self.forced_calls = self.expected_calls = 0
        self._unforced: set[str] = set()

    def generate(self, requests, sampling, progress=None):
        if requests and all(r.verdict is not None for r in requests):
            return [[c] for c in self._verdicts(requests, sampling)]
        t = time.perf_counter()
        try:
            out = self.inner.generate(requests, sampling, progress)
        finally:
            self.generate_s += time.perf_counter() - t
        for comps in out:
            for c in comps:
                if parse(c.text, 2, c.finish_reason).scores is None:
                    self._unforced.add(forcing_prefix(c.text))
        return out

    def _verdicts(self, requests, sampling):
        force = [i for i, r in enumerate(requests) if r.prefix in self._unforced]
        redo = [i for i in range(len(requests)) if i not in set(force)]
        out = [None] * len(requests)
        for idx, kind in ((force, "force"), (redo, "expected")):
            if not idx:
                continue
            t = time.perf_counter()
            res = [c[0] for c in self.inner.generate([requests[i] for i in idx], sampling)]
            dt = time.perf_counter() - t
            if kind == "force":
                self.force_s += dt
                self.forced_calls += len(idx)
            else:
                self.expected_s += dt
                self.expected_calls += len(idx)
            for i, r in zip(idx, res):
                out[i] = r
        return out

    def close(self):
        self.inner.close()


def prompt_tokens(rows: list[dict], model: str) -> list[int]:
    """Prompt lengths in the judge's own tokens (chat template applied), via transformers' GGUF tokenizer."""
    from transformers import AutoTokenizer

    from rewardscale import models
    from rewardscale.template import render

    path = models.model_path(model)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    out = []
    for r in rows:
        text = tok.apply_chat_template(render(Request.make(r["query"], r["responses"]), (0, 1)), tokenize=False)
        out.append(len(tok(text)["input_ids"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("-k", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4, help="pairs scored together")
    ap.add_argument("--max-tokens", type=int, default=Sampling().max_tokens)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--model", default=None)
    ap.add_argument("--count-tokens", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("verdict-bench.jsonl"))
    args = ap.parse_args()

    from rewardscale import models
    from rewardscale.backends.llamacpp import LlamaCppBackend

    model = args.model or models.BASE_MODEL  # the raw engine (model_path takes a base model)
    rows = [json.loads(line) for line in args.data.open()][: args.limit]
    if args.count_tokens:
        n = prompt_tokens(rows, model)
        print(f"prompt tokens: min {min(n)}, mean {sum(n) / len(n):.0f}, max {max(n)}", flush=True)
    backend = Timed(LlamaCppBackend(models.model_path(model), parallel=args.parallel, model_id=model))
    grm = GRM(
        backend,  # type: ignore[arg-type]
        sampling=Sampling(max_tokens=args.max_tokens),
        force_verdict=True,
        score_mode="expected",
        max_retries=0,
    )
    rewards = []
    args.out.write_text("")
    start = time.perf_counter()
    for b in range(0, len(rows), args.batch):
        chunk = rows[b : b + args.batch]
        reqs = [Request.make(r["query"], r["responses"], id=r["id"]) for r in chunk]
        got = grm.score_batch(reqs, k=args.k)
        rewards += got
        with args.out.open("a") as f:
            for r, row in zip(got, chunk):
                d = r.to_dict()
                d["label"] = row["label"]
                f.write(json.dumps(d) + "\n")
        acc = {"integer": 0.0, "expected": 0.0}
        for r, row in zip(rewards, rows):
            for mode in acc:
                acc[mode] += win_probability(totals(r.samples, r.request.n, mode), r.n_valid > 0)[row["label"]]
        rep = verdict_report(rewards)
        n = len(rewards)
        print(
            json.dumps(
                {
                    "pairs": n,
                    "k": args.k,
                    "samples": rep.samples,
                    "verdict_rate_unforced": rep.verdict_rate_unforced,
                    "valid_rate_after_forcing": rep.valid_rate,
                    "forced_rate": rep.forced_rate,
                    "tie_rate_integer": rep.tie_rate,
                    "tie_rate_expected": rep.tie_rate_expected,
                    "first_position_win_rate": rep.first_position_win_rate,
                    "accuracy_integer": acc["integer"] / n,
                    "accuracy_expected": acc["expected"] / n,
                    "generate_s": round(backend.generate_s, 1),
                    "force_s": round(backend.force_s, 1),
                    "forcing_overhead": round(backend.force_s / max(backend.generate_s, 1e-9), 4),
                    "forced_calls": backend.forced_calls,
                    "expected_s": round(backend.expected_s, 1),
                    "expected_overhead": round(backend.expected_s / max(backend.generate_s, 1e-9), 4),
                    "expected_calls": backend.expected_calls,
                    "wall_s": round(time.perf_counter() - start, 1),
                    "statuses": rep.statuses,
                }
            ),
            flush=True,
        )
    grm.close()


if __name__ == "__main__":
    main()
