"""Sampling plan: k samples, each with a seed and a position-balanced permutation of the responses.

Permutations come from seeded random Latin squares: every block of n consecutive samples shows
each response in each position exactly once, so when n divides k every response sits in every
position equally often, and otherwise within one. Identical permutations are grouped so that
they share one prompt and are drawn as `n` completions of it (one prefill, shared KV cache).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from .types import Request, SampleSpec


def derive_seed(base: int | str, *tags: object) -> int:
    """A 31-bit seed for (base, *tags), the same in every process (sha256 of "base:tag:...", not
    Python's salted `hash()`), so a derived seed, and the store key it feeds, never drifts."""
    h = hashlib.sha256(":".join(str(part) for part in (base, *tags)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def request_seed(request: Request, seed: int) -> int:
    """A per-request seed derived from the content, so plans don't depend on batch order."""
    h = hashlib.sha256(repr((seed, request.messages, request.responses)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def latin_square(n: int, rng: random.Random) -> list[tuple[int, ...]]:
    """A random n x n Latin square: rows are permutations, each symbol once per column."""
    rows, cols, symbols = list(range(n)), list(range(n)), list(range(n))
    rng.shuffle(rows)
    rng.shuffle(cols)
    rng.shuffle(symbols)
    return [tuple(symbols[(r + c) % n] for c in cols) for r in rows]


def plan(n: int, k: int, seed: int = 0, shuffle: bool = True) -> list[SampleSpec]:
    """k SampleSpecs for n responses. `shuffle=False` shows every sample in the original order."""
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 and k >= 1, got n={n}, k={k}")
    rng = random.Random(seed)
    perms: list[tuple[int, ...]] = []
    if not shuffle or n == 1:
        perms = [tuple(range(n))] * k
    else:
        while len(perms) < k:
            perms.extend(latin_square(n, rng))
        perms = perms[:k]
    groups: dict[tuple[int, ...], int] = {}
    slots: dict[tuple[int, ...], int] = {}
    specs = []
    for i, perm in enumerate(perms):
        g = groups.setdefault(perm, len(groups))
        slot = slots.get(perm, 0)
        slots[perm] = slot + 1
        specs.append(SampleSpec(index=i, permutation=perm, seed=_group_seed(seed, g), group=g, slot=slot))
    return specs


def balanced_permutations(sizes: Sequence[int], seed: int = 0) -> list[tuple[int, ...]]:
    """One permutation per item (`sizes[i]`: its number of responses), position-balanced across
    the items of one size, as `plan` balances k samples: each block of n same-size items shows
    every response in every position once. For data that shows each item once (RL prompts)."""
    by_size: dict[int, list[int]] = {}
    for i, n in enumerate(sizes):
        by_size.setdefault(n, []).append(i)
    out: list[tuple[int, ...]] = [()] * len(sizes)
    for n, items in by_size.items():
        for i, spec in zip(items, plan(n, len(items), seed=derive_seed(seed, "balanced", n))):
            out[i] = spec.permutation
    return out


def _group_seed(seed: int, group: int) -> int:
    return (seed * 1_000_003 + group * 7919 + 12345) % (2**31 - 1)


def position_counts(specs: Sequence[SampleSpec], n: int) -> list[list[int]]:
    """counts[i][p]: how many samples show original response i at position p."""
    counts = [[0] * n for _ in range(n)]
    for s in specs:
        for pos, orig in enumerate(s.permutation):
            counts[orig][pos] += 1
    return counts
