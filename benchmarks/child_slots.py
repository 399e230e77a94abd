"""Which llama.cpp slots a later task finds its prompt in, after a prompt was fanned out to `n` children.

The question behind the embedded backend's layout: k samples as one task of `n` children (one
prefill, copied into the children's slots) or as k tasks of their own (each keeps its sample in
its slot, so a forced verdict continues it without prefilling it again). A layout of k tasks
after a fan-out of children (eeac7bb) only pays if the tasks find the prompt in the children's
slots. This asks the engine: after a fan-out of `n` children with max_tokens 1, `n` tasks of the
same prompt at once, each reporting how many prompt tokens it prefilled (`timings.prompt_n`;
1 means the slot held the whole prompt). Counts, not times, so a busy machine does not change them.

    python benchmarks/child_slots.py -n 4 --out benchmarks/results/child_slots.json
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llama_engine import llama_server

from rewardscale import Request, template


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    ap.add_argument("-n", type=int, default=4, help="children of the fan-out = slots = tasks after it")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    server = llama_server(args.model, args.n)
    messages = template.render(Request.make("What is 17*23?", ["391", "401"]), [0, 1])

    def call(n: int, seed: int, max_tokens: int) -> dict:
        body = {"messages": messages, "n": n, "max_tokens": max_tokens, "seed": seed, "temperature": 0.5}
        return server.handle_chat_completions(body)

    fan_out = call(args.n, 0, 1)
    with ThreadPoolExecutor(args.n) as pool:
        tasks = list(pool.map(lambda s: call(1, s, 4), range(1, args.n + 1)))
    result = {
        "model": args.model,
        "n": args.n,
        "prompt_tokens": fan_out["usage"]["prompt_tokens"],
        "fan_out_prefilled": fan_out["timings"]["prompt_n"],
        "tasks_prefilled": [t["timings"]["prompt_n"] for t in tasks],
    }
    result["tasks_that_found_the_prompt"] = sum(n <= 1 for n in result["tasks_prefilled"])
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
