"""Scheduling samples onto a fixed number of engine slots (llama.cpp `parallel`).

Two pure pieces the embedded backend uses: a budget that keeps no more samples in flight than
there are slots (a sample queued behind full slots lands later in whichever slot frees, which
holds another prompt, and prefills again), and the prefix that the prompts of one call share (the
GRM's system line, instructions and general criteria), which the backend prefills once and
copies into every slot instead of once per slot.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..types import Message

# A shared prefix shorter than this (characters, ~4 per token) is not worth a call of its own.
MIN_SHARED_CHARS = 256


class SlotBudget:
    """At most `slots` samples in flight. A request takes all the slots its samples need at once
    (so two requests never each hold part of what they need and wait on each other forever), and
    gives each back as its sample finishes."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self._free = slots
        self._cond = threading.Condition()

    def take(self, n: int) -> None:
        """Wait until `n` slots (at most all of them) are free, and take them."""
        n = min(n, self.slots)
        with self._cond:
            self._cond.wait_for(lambda: self._free >= n)
            self._free -= n

    def give(self, n: int = 1) -> None:
        """Give `n` slots back."""
        with self._cond:
            self._free = min(self.slots, self._free + n)
            self._cond.notify_all()

    @property
    def free(self) -> int:
        with self._cond:
            return self._free


def shared_prefix(chats: Sequence[Sequence[Message]]) -> list[Message] | None:
    """The chat that every one of `chats` starts with: the messages they all have in common, then
    the longest common start of the first message that differs (same role). None when there are
    fewer than two distinct chats or the common part is shorter than MIN_SHARED_CHARS."""
    distinct = list({_key(c): c for c in chats}.values())
    if len(distinct) < 2:
        return None
    first, rest = distinct[0], distinct[1:]
    out: list[Message] = []
    for i, m in enumerate(first):
        same = [c[i] if i < len(c) else None for c in rest]
        if all(s == m for s in same):
            out.append(dict(m))
            continue
        if all(s is not None and s.get("role") == m.get("role") for s in same):
            common = _common_start([m.get("content", "")] + [s.get("content", "") for s in same if s is not None])
            if common:
                out.append({"role": m["role"], "content": common})
        break
    if sum(len(m.get("content", "")) for m in out) < MIN_SHARED_CHARS or not out:
        return None
    return out


def _key(chat: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.get("role", ""), m.get("content", "")) for m in chat)


def _common_start(texts: Sequence[str]) -> str:
    lo, hi = min(texts), max(texts)  # the common start of all is that of the extremes
    i = 0
    while i < min(len(lo), len(hi)) and lo[i] == hi[i]:
        i += 1
    return lo[:i]
