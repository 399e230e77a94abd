"""Learning signal of SPCT rejection fine-tuning on a small arithmetic preference task (CPU).

Measures the fraction of correct GRM samples (the shared rule: the right answer gets a strictly
higher score; unparseable = wrong) on held-out pairs, before and after RFT, both through the
same transformers backend (bf16) with the same seeds. RFT samples with llama.cpp on the GGUF
(fast on CPU), then fine-tunes the dequantised model with TRL's SFTTrainer.

    python experiments/spct/learning_signal.py --out /tmp/spct-signal --train 24 --eval 12 --k 4

Writes `signal.json` (figures, sizes, wall times) into --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rewardscale import models
from rewardscale.backends import make_backend
from rewardscale.batch import write_jsonl_atomic as write_jsonl
from rewardscale.correctness import is_correct
from rewardscale.grm import GRM
from rewardscale.train.common import TrainOptions
from rewardscale.train.data import load_examples
from rewardscale.train.model import resolve_model
from rewardscale.train.rft import build_rft
from rewardscale.train.sft import train_sft
from rewardscale.train.tasks import arithmetic_pairs
from rewardscale.types import Sampling


def held_out_accuracy(model_dir: str, examples, k: int, max_tokens: int, seed: int) -> dict:
    grm = GRM(make_backend("transformers", model=model_dir), Sampling(0.5, 1.0, max_tokens), max_retries=0, seed=seed)
    t = time.time()
    samples = grm.sample([e.request for e in examples], k)
    flat = [(e, j) for e, js in zip(examples, samples) for j in js]
    correct = sum(j.valid and is_correct(j.scores, e.label) for e, j in flat)
    return {
        "samples": len(flat),
        "correct": correct,
        "fraction_correct": correct / len(flat),
        "parsed": sum(j.valid for _, j in flat),
        "wall_s": round(time.time() - t, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train", type=int, default=24)
    ap.add_argument("--eval", type=int, default=12)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--n-samples", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=320)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--force-verdict",
        action="store_true",
        help="RFT sampling forces a verdict on samples without one (a small model that rarely writes the "
        "verdict line itself then has trajectories to keep; the held-out evaluation never forces)",
    )
    ap.add_argument("--before-json", type=Path, help="reuse a 'before' result (same data, k, seeds) from a run")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    train = arithmetic_pairs(args.train, seed=1)
    held = arithmetic_pairs(args.eval, seed=2, disjoint_from=train)
    write_jsonl(out / "train.jsonl", train)
    write_jsonl(out / "heldout.jsonl", held)
    train_ex, held_ex = load_examples(out / "train.jsonl"), load_examples(out / "heldout.jsonl")
    result: dict = {
        "train_pairs": len(train),
        "heldout_pairs": len(held),
        "k": args.k,
        "args": {key: str(v) if isinstance(v, Path) else v for key, v in vars(args).items()},
    }
    t0 = time.time()
    base = resolve_model(models.FIXTURE_MODEL, out)
    if args.before_json:
        result["before"] = json.loads(args.before_json.read_text()) | {"reused_from": str(args.before_json)}
    else:
        result["before"] = held_out_accuracy(base, held_ex, args.k, args.max_tokens, seed=7)
        (out / "before.json").write_text(json.dumps(result["before"]))
    print("before", result["before"], flush=True)
    t = time.time()
    sampler = GRM(
        make_backend("llamacpp", model=models.FIXTURE_MODEL, parallel=8),
        Sampling(0.5, 1.0, args.max_tokens),
        seed=0,
        force_verdict=args.force_verdict,
    )
    with sampler:
        records, report = build_rft(sampler, train_ex, n_samples=args.n_samples)
    write_jsonl(out / "rft_data.jsonl", records)
    result["rft_report"] = report.to_dict()
    result["rft_sampling_wall_s"] = round(time.time() - t, 1)
    print("rft", report.summary(), flush=True)
    t = time.time()
    opts = TrainOptions(learning_rate=args.lr, epochs=args.epochs, batch_size=1, grad_accum=4, threads=args.threads)
    trained = train_sft(base, records, out / "rft", opts, max_length=2048)
    result["sft"] = {"steps": trained.steps, "train_loss": trained.train_loss, "wall_s": round(time.time() - t, 1)}
    print("sft", result["sft"], flush=True)
    result["after"] = held_out_accuracy(str(out / "rft"), held_ex, args.k, args.max_tokens, seed=7)
    print("after", result["after"], flush=True)
    result["total_wall_s"] = round(time.time() - t0, 1)
    (out / "signal.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
