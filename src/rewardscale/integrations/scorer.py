"""Where the integrations' rewards come from: a GRM in this process, or a reward server.

Both give the same thing: `score(requests, k) -> [result dict]` (and `ascore`), one result per
request in the server's wire format (`Reward.to_dict(request=False)`), so the TRL and verl code is the
same either way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from ..grm import GRM, SampleScorer
from ..types import Request
from .client import RewardClient


class Scorer(Protocol):
    def score(
        self, requests: Sequence[Request], k: int | None = None, *, k_meta: int | None = None
    ) -> list[dict[str, Any]]: ...

    async def ascore(
        self, requests: Sequence[Request], k: int | None = None, *, k_meta: int | None = None
    ) -> list[dict[str, Any]]: ...


class LocalScorer:
    """A GRM in this process. All requests of a call go to the backend in one `score_batch`;
    a lock serializes calls (backends need not be thread-safe). With `meta_rm`, MetaRM@k: the top
    `k_meta` samples by q vote (default k // 2)."""

    def __init__(self, grm: GRM, k: int = 4, meta_rm: SampleScorer | None = None):
        self.grm = grm
        self.k = k
        self.meta_rm = meta_rm
        self._lock = threading.Lock()

    def score(
        self, requests: Sequence[Request], k: int | None = None, *, k_meta: int | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            rewards = self.grm.score_batch(list(requests), k=k or self.k, meta_rm=self.meta_rm, k_meta=k_meta)
        return [r.to_dict(samples=False, request=False) for r in rewards]

    async def ascore(
        self, requests: Sequence[Request], k: int | None = None, *, k_meta: int | None = None
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.score, requests, k, k_meta=k_meta)


def make_scorer(
    grm: GRM | None = None,
    url: str | None = None,
    k: int = 4,
    timeout: float = 900.0,
    meta_rm: SampleScorer | None = None,
) -> Scorer:
    """A LocalScorer for `grm`, else a RewardClient for `url` (default `$REWARDSCALE_URL` or
    http://127.0.0.1:8000). Giving both is an error; so is a `meta_rm` object with a server (the
    server loads its own: `rewardscale serve --meta-rm DIR`)."""
    if grm is not None and url is not None:
        raise ValueError("give either grm= (score in this process) or url= (a reward server), not both")
    if grm is not None:
        return LocalScorer(grm, k=k, meta_rm=meta_rm)
    if meta_rm is not None:
        raise ValueError(
            "meta_rm= applies to grm= (in process); a reward server loads its own meta RM: "
            "start it with `rewardscale serve --meta-rm DIR` and pass k_meta= here"
        )
    return RewardClient(url, timeout=timeout)
