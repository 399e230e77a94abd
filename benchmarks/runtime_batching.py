"""k sequences of one GRM prompt decoded together vs one sequence, on both llama.cpp runtimes.

The issue-2 runtime choice: does llama-cpp-python's native build (compiled on this machine, so
with every CPU feature, e.g. AVX-512 VNNI) make batched decoding pay where xllamacpp's generic
prebuilt wheel (AVX2) does not? Each runtime runs in its own child process, one after the other,
and reports its k-sequence aggregate tokens/s as a ratio to its own single sequence (same prompt,
same process), so the two ratios are comparable even on a noisy machine.

    python benchmarks/runtime_batching.py -k 8 16 --max-tokens 256

xllamacpp: `n` completions of one chat request (child tasks copy the parent's KV cache).
llama-cpp-python: its low-level API, one prefill, `llama_memory_seq_cp` to k sequences, one
`llama_decode` per step over all live sequences (what a llama-cpp-python backend would do).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

QUERY = ("How many legs does a spider have?", ["A spider has eight legs.", "A spider has six legs."])


def _messages(seed: int) -> list[dict]:
    """The GRM prompt, with a run tag in front so no run reuses another's cached prefill."""
    from rewardscale import Request
    from rewardscale.template import render

    messages = [dict(m) for m in render(Request.make(*QUERY), (0, 1))]
    messages[0]["content"] = f"[run {seed}] " + messages[0]["content"]
    return messages


def _model_path() -> str:
    from rewardscale import models

    return str(models.model_path(models.BASE_MODEL))


def xllamacpp_runner(max_tokens: int, threads: int, k_max: int):
    """Return (run(k, seed) -> (tokens, seconds, prefill seconds, prompt tokens), system_info, close)."""
    import xllamacpp as xlc
    from llama_engine import llama_server

    server = llama_server(_model_path(), k_max, ctx_per_slot=2048, unified=True, threads=threads)

    def run(k: int, seed: int, tokens: int = max_tokens) -> tuple[int, float, float, int]:
        body = {
            "messages": _messages(seed),
            "n": k,
            "seed": seed,
            "temperature": 0.5,
            "max_tokens": tokens,
            "logprobs": True,
        }
        t = time.perf_counter()
        out = server.handle_chat_completions(body)
        dt = time.perf_counter() - t
        tokens = sum(len((c.get("logprobs") or {}).get("content") or ()) for c in out["choices"])
        timings = out.get("timings") or {}
        return tokens, dt, timings.get("prompt_ms", 0.0) / 1000, timings.get("prompt_n", 0)

    return run, xlc.get_system_info(), server.handle_metrics


def llama_cpp_python_runner(max_tokens: int, threads: int, k_max: int):
    """The same as `xllamacpp_runner`, on llama-cpp-python's C API."""
    import llama_cpp as lc
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    lc.llama_backend_init()
    model = lc.llama_model_load_from_file(_model_path().encode(), lc.llama_model_default_params())
    vocab = lc.llama_model_get_vocab(model)
    cp = lc.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max = k_max * 2048, 2048, 512, k_max
    cp.n_threads = cp.n_threads_batch = threads
    ctx = lc.llama_init_from_model(model, cp)
    formatter = Jinja2ChatFormatter(
        template=lc.llama_model_chat_template(model, None).decode(), eos_token="<|im_end|>", bos_token=""
    )

    def put(batch, j: int, token: int, pos: int, seq: int) -> None:
        batch.token[j], batch.pos[j], batch.n_seq_id[j], batch.logits[j] = token, pos, 1, True
        batch.seq_id[j][0] = seq

    def run(k: int, seed: int, tokens: int = max_tokens) -> tuple[int, float, float, int]:
        prompt = formatter(messages=_messages(seed)).prompt.encode()
        buf = (lc.llama_token * 8192)()
        n_prompt = lc.llama_tokenize(vocab, prompt, len(prompt), buf, 8192, False, True)
        prompt_tokens = list(buf[:n_prompt])
        mem = lc.llama_get_memory(ctx)
        lc.llama_memory_clear(mem, True)
        batch = lc.llama_batch_init(max(n_prompt, k), 0, 1)
        t = time.perf_counter()
        for i, tok in enumerate(prompt_tokens):  # one prefill, logits only for the last token
            put(batch, i, tok, i, 0)
            batch.logits[i] = i == n_prompt - 1
        batch.n_tokens = n_prompt
        assert lc.llama_decode(ctx, batch) == 0
        prefill = time.perf_counter() - t
        for s in range(1, k):
            lc.llama_memory_seq_cp(mem, 0, s, -1, -1)
        samplers = []
        for s in range(k):
            chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(0.95, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(0.5))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed + s))
            samplers.append(chain)
        logits_at = dict.fromkeys(range(k), n_prompt - 1)
        made = dict.fromkeys(range(k), 0)
        alive = list(range(k))
        generated = 0
        while alive:
            batch.n_tokens, still = 0, []
            for s in alive:
                tok = lc.llama_sampler_sample(samplers[s], ctx, logits_at[s])
                generated += 1
                made[s] += 1
                if lc.llama_vocab_is_eog(vocab, tok) or made[s] >= tokens:
                    continue
                logits_at[s] = batch.n_tokens
                put(batch, batch.n_tokens, tok, n_prompt + made[s] - 1, s)
                batch.n_tokens += 1
                still.append(s)
            alive = still
            if alive:
                assert lc.llama_decode(ctx, batch) == 0
        dt = time.perf_counter() - t
        for chain in samplers:
            lc.llama_sampler_free(chain)
        lc.llama_batch_free(batch)
        return generated, dt, prefill, n_prompt

    return run, lc.llama_print_system_info().decode(), lambda: lc.llama_free(ctx)


RUNNERS = {"xllamacpp": xllamacpp_runner, "llama-cpp-python": llama_cpp_python_runner}


def measure(runtime: str, ks: list[int], max_tokens: int, threads: int) -> dict:
    """Single sequence before and after the k-sequence runs (averaged), in one process; every
    rate counts the whole call (prefill included), and the single runs' prefill speed is shown."""
    run, system_info, close = RUNNERS[runtime](max_tokens, threads, max(ks))
    run(1, 0, 8)  # warm-up
    t1, d1, p1, n1 = run(1, 1)
    batched = {k: run(k, 10 * k) for k in ks}
    t2, d2, p2, n2 = run(1, 2)
    close()
    single = (t1 + t2) / (d1 + d2)
    rows = {
        str(k): {
            "tokens": tok,
            "seconds": round(sec, 1),
            "tok_s": round(tok / sec, 1),
            "ratio": round(tok / sec / single, 2),
        }
        for k, (tok, sec, _, _) in batched.items()
    }
    return {
        "runtime": runtime,
        "single_tok_s": round(single, 1),
        "prefill_tok_s": round((n1 + n2) / (p1 + p2), 1) if p1 + p2 else None,
        "decode_only_single_tok_s": round((t1 + t2) / (d1 + d2 - p1 - p2), 1),
        "k": rows,
        "cpu_features": system_info.strip(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runtime", choices=sorted(RUNNERS), help="measure one runtime in this process")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if args.runtime:
        print(json.dumps(measure(args.runtime, args.k, args.max_tokens, args.threads)))
        return
    results = []
    for runtime in RUNNERS:  # one child process each: the engines never compete for the CPU
        cmd = [sys.executable, __file__, "--runtime", runtime, "--max-tokens", str(args.max_tokens)]
        cmd += ["--threads", str(args.threads), "-k", *map(str, args.k)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            results.append({"runtime": runtime, "error": (proc.stderr or proc.stdout)[-500:]})
            continue
        results.append(json.loads(lines[-1]))
    for r in results:
        if "error" in r:
            print(f"{r['runtime']}: failed: {r['error']}")
            continue
        ks = ", ".join(f"k={k}: {v['tok_s']} tok/s ({v['ratio']}x)" for k, v in r["k"].items())
        print(
            f"{r['runtime']}: one sequence {r['single_tok_s']} tok/s (decode alone {r['decode_only_single_tok_s']},"
            f" prefill {r['prefill_tok_s']} tok/s); {ks}"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"max_tokens": args.max_tokens, "threads": args.threads, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
