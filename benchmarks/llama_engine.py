"""A bare llama.cpp engine (`xllamacpp.Server`) for the benchmarks that measure the runtime below
rewardscale's backend: one place sets the engine up, so their figures compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardscale import models


def model_file(model: str) -> Path:
    """A GGUF path as given, or the file of an embedded model name (downloaded on first use)."""
    return Path(model) if Path(model).is_file() else models.model_path(model)


def llama_server(model: str, slots: int, *, ctx_per_slot: int = 4096, unified: bool = False, threads: int = 2) -> Any:
    """One engine with `slots` parallel sequences of `ctx_per_slot` tokens each; no warm-up pass
    (it would fill the prompt cache the benchmarks measure) and no logging."""
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = str(model_file(model))
    p.n_parallel, p.n_ctx, p.kv_unified = slots, slots * ctx_per_slot, unified
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
    p.warmup = False
    p.verbosity = 0
    return xlc.Server(p)
