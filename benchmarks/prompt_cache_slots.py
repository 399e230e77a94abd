"""Whether different GRM prompts sent together share the template a first prompt prefilled.

The question behind "8 different requests together lose to one at a time" (issue 16): every GRM
prompt starts with the same ~490 tokens (system line, instructions, criteria). One request at a
time, the slot that served the last one holds the template and the next prompt prefills only its
own ~145 tokens. Sent together on a fresh engine, each lands in an empty slot. llama.cpp keeps a
prompt cache in RAM (`cache_ram_mib`, on by default) that could hand the template to other slots.
This asks the engine, by counting prompt tokens each task prefilled (`timings.prompt_n`; counts,
not times, so a busy machine does not change them):

- cold: 8 different prompts at once on a fresh engine;
- warm: one prompt alone first (max_tokens 1), then the other 7 at once;
- then, in both, the same 8 prompts again at once (every slot now holds some GRM prompt).

    python benchmarks/prompt_cache_slots.py --out benchmarks/results/prompt_cache_slots.json
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llama_engine import llama_server

from rewardscale import Request, models, template

PAIRS = [(17, 23), (12, 34), (56, 7), (81, 9), (44, 44), (13, 77), (90, 21), (38, 65)]
QUESTIONS = [f"What is {a}*{b}?" for a, b in PAIRS]


def run(model: str, warm: bool) -> dict:
    server = llama_server(model, len(QUESTIONS))
    prompts = [template.render(Request.make(q, ["391", "401"]), [0, 1]) for q in QUESTIONS]

    def call(messages: list) -> int:
        body = {"messages": messages, "n": 1, "max_tokens": 2, "seed": 0, "temperature": 0.5}
        return server.handle_chat_completions(body)["timings"]["prompt_n"]

    first = [call(prompts[0])] if warm else []
    rest = prompts[1:] if warm else prompts
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(call, rest))
        again = list(pool.map(call, prompts))
    return {"first_alone": first, "together": together, "again_together": again}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=models.FIXTURE_MODEL, help="the template is the same for every model")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result = {"model": args.model, "cold": run(args.model, False), "warm": run(args.model, True)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
