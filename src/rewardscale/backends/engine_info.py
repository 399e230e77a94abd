"""What the embedded llama.cpp engine will choose on this machine, and why: the lines
`rewardscale models` prints and the backend logs when it starts.

Pure functions over what they are given (core count, the build's `system_info`, the CPU's flags),
so the reasoning is tested without a model; `describe()` reads them from this machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# tokens of prompt + completion each llama.cpp slot holds by default (its own KV cache)
CTX_PER_SLOT = 8192

# CPU features that change llama.cpp's speed, as /proc/cpuinfo and llama.cpp's system_info spell them
SIMD = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8")


def default_threads(cpus: int | None = None) -> int:
    """One thread per core: decoding is memory-bound and prefill compute-bound, both want every core."""
    return max(1, cpus if cpus is not None else os.cpu_count() or 1)


def host_simd(cpuinfo: str | None = None) -> set[str]:
    """The SIMD features of this CPU (from /proc/cpuinfo; empty where it cannot be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    have = set(flags.group(1).split()) if flags else set()
    return {f for f in SIMD if f in have}


def build_simd(system_info: str) -> set[str]:
    """The SIMD features a llama.cpp build uses, from its `system_info` (`AVX2 = 1 | ...`)."""
    on = {m.group(1).lower() for m in re.finditer(r"(\w+) = 1", system_info)}
    return {f for f in SIMD if f in on}


def choices(
    parallel: int, threads: int | None, ctx_per_slot: int, cpus: int, system_info: str, host: set[str]
) -> list[str]:
    """The engine's settings and the reason for each, one line apiece."""
    used = threads or default_threads(cpus)
    small = cpus <= 4 and parallel > 1
    lines = [
        f"llama.cpp engine: {parallel} slot(s) x {ctx_per_slot:,} tokens, a KV cache per slot; "
        f"{used} thread(s) on {cpus} core(s) ({'--threads' if threads else 'one per core; --threads to change'})",
        "  slots: the k samples of one prompt decode together and share its prefill (llama.cpp's n children); "
        "a slot keeps its last prompt, so a different prompt prefills only what follows the ~480-token "
        "template, except the first one in each slot"
        + (
            "; on a CPU this small, a short run of different prompts on a fresh engine can be faster with "
            "--parallel 1 (each slot's first prompt prefills the whole template, which llama.cpp shares with no "
            "empty slot); once every slot holds one, 8 different requests together were 1.28x one at a time"
            if small
            else ""
        ),
    ]
    build = build_simd(system_info)
    missing = [f for f in SIMD if f in host and f not in build]  # in SIMD's order, oldest first
    names = " ".join(f.upper() for f in SIMD if f in build) or "no SIMD reported"
    if missing:
        lines.append(
            f"  build: {names}; this CPU also has {' '.join(f.upper() for f in missing)}, which the prebuilt wheel "
            "does not use (a native build prefilled 1.57x faster on an AVX-512 host; README, runtime choice)"
        )
    else:
        lines.append(f"  build: {names}, every SIMD feature this CPU reports")
    return lines


def describe(parallel: int = 8, threads: int | None = None, ctx_per_slot: int = CTX_PER_SLOT) -> list[str]:
    """`choices` for this machine and the installed xllamacpp build."""
    try:
        import xllamacpp as xlc
    except ImportError:  # pragma: no cover - a core dependency
        return ["llama.cpp engine: xllamacpp is not installed"]
    return choices(parallel, threads, ctx_per_slot, os.cpu_count() or 1, xlc.get_system_info(), host_simd())
