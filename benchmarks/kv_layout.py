"""llama.cpp KV layout on the embedded judge: one unified KV pool vs a KV stream per slot.

For each layout, one fresh engine (same model, 8 slots, same threads): every slot is first given
a GRM prompt (so each holds the ~480-token template, as in a long run), then it times one prompt
alone, 8 different prompts at once, and one prompt with n = 8 (k samples of one prompt), each
decoding a fixed number of tokens (EOS ignored). Prints wall times, tokens/s, how many prompt
tokens each request had to prefill (llama.cpp's `timings.prompt_n`: the rest came from the slot's
cache) and the per-slot / unified ratios. Run on an otherwise idle machine.

    python benchmarks/kv_layout.py --tokens 64 --out benchmarks/results/kv_layout.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llama_engine import llama_server, model_file

from rewardscale import Request, models, template

PAIRS = [
    ("What is 17*23?", "391", "401"),
    ("Capital of Australia?", "Canberra.", "Sydney."),
    ("Name a noble gas.", "Neon.", "Nitrogen."),
    ("How many minutes are in an hour?", "60", "100"),
    ("Which is larger, 0.5 or 0.45?", "0.5", "0.45"),
    ("Opposite of 'early'?", "Late.", "Soon."),
    ("What is H2O?", "Water.", "Salt."),
    ("Chemical symbol for iron?", "Fe", "Ir"),
    ("Largest planet?", "Jupiter.", "Saturn."),
    ("2**10?", "1024", "1000"),
    ("Boiling point of water in C?", "100", "90"),
    ("Author of Hamlet?", "Shakespeare.", "Marlowe."),
    ("Days in a leap year?", "366", "365"),
    ("Color of the sky on a clear day?", "Blue.", "Green."),
    ("Speed of light in km/s, roughly?", "300,000", "30,000"),
    ("What is 9*8?", "72", "81"),
    ("Tallest mountain?", "Everest.", "K2."),
]
SLOTS = 8


def messages(i: int) -> list[dict]:
    q, a, b = PAIRS[i]
    return template.render(Request.make(q, [a, b]), [0, 1])


def measure(model: str, unified: bool, tokens: int, threads: int) -> dict:
    server = llama_server(model, SLOTS, unified=unified, threads=threads)

    def call(i: int, n: int = 1, max_tokens: int = tokens) -> dict:
        body = {"messages": messages(i), "n": n, "max_tokens": max_tokens, "temperature": 0.5, "seed": i}
        out = server.handle_chat_completions({**body, "ignore_eos": True})
        if "timings" not in out:
            raise SystemExit(f"llama.cpp error: {str(out)[:300]}")
        return out["timings"]

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    res: dict = {"kv_unified": unified}
    with ThreadPoolExecutor(SLOTS) as pool:
        list(pool.map(lambda i: call(i, max_tokens=1), range(SLOTS)))  # each slot holds a template prompt
        wall, t = timed(lambda: call(SLOTS))
        res["one_prompt"] = {
            "seconds": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1),
            "prefilled": t["prompt_n"],
        }
        wall, ts = timed(lambda: list(pool.map(call, range(SLOTS + 1, 2 * SLOTS + 1))))
        res["eight_prompts"] = {
            "seconds": round(wall, 2),
            "tokens_per_s": round(SLOTS * tokens / wall, 1),
            "prefilled": [x["prompt_n"] for x in ts],
        }
        wall, t = timed(lambda: call(0, n=SLOTS))
        res["one_prompt_n8"] = {
            "seconds": round(wall, 2),
            "tokens_per_s": round(SLOTS * tokens / wall, 1),
            "prefilled": t["prompt_n"],
        }
    return res  # the engine is destroyed with this frame (its loop has answered, so it cannot hang)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=models.BASE_MODEL, help="embedded model name or GGUF path")
    ap.add_argument("--tokens", type=int, default=64, help="tokens each sequence decodes")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    path = str(model_file(args.model))
    result: dict = {"model": Path(path).name, "slots": SLOTS, "tokens": args.tokens, "threads": args.threads}
    for unified in (True, False):
        result["unified" if unified else "per_slot"] = r = measure(path, unified, args.tokens, args.threads)
        print(json.dumps(r), flush=True)
    u, s = result["unified"], result["per_slot"]
    result["per_slot_vs_unified"] = {
        case: round(u[case]["seconds"] / s[case]["seconds"], 2)
        for case in ("one_prompt", "eight_prompts", "one_prompt_n8")
    }
    print(json.dumps(result["per_slot_vs_unified"]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
