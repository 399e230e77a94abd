"""GRM rewards for TRL's `GRPOTrainer(reward_funcs=...)` (sync and async).

TRL calls a reward function as `f(prompts=[...], completions=[...], completion_ids=..., **columns)`
with one entry per completion, each prompt repeated `num_generations` times, and expects one float
(or None: "not applicable") per completion. We group completions by prompt and score each group in
ONE GRM request, so the judge compares a prompt's completions side by side (the pointwise GRM
takes n responses) and the whole call is one batched backend call. Prompts and completions may be
conversational (lists of messages) or plain strings.

    from rewardscale import GRM
    from rewardscale.integrations.trl import GRMReward
    trainer = GRPOTrainer(model=..., reward_funcs=[GRMReward(grm=GRM.default(), k=4)], ...)
    trainer = GRPOTrainer(model=..., reward_funcs=[AsyncGRMReward(url="http://rm:8000", k=8)], ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..grm import GRM, SampleScorer
from ..scales import SCALES, Scale, scaled
from ..vote import k_meta_at
from .scorer import Scorer, make_scorer
from .text import Grouped, group_by_prompt


class _GRMRewardBase:
    """Shared setup and result mapping of the sync and async reward functions.

    grm: score in this process; url: score on a `rewardscale serve` server (default
        `$REWARDSCALE_URL` or http://127.0.0.1:8000). Give at most one; neither means the server.
    k: samples per GRM request (Voting@k).
    scale: "unit" (mean score mapped to 0..1, default), "mean" (1..10) or "sum" (Voting@k sum).
    max_group: most completions in one GRM request; a bigger group is split (None: no limit).
    abstain: reward when every sample of a group abstained (None lets TRL treat it as missing).
    name: the name TRL logs the reward under (`rewards/<name>/mean`).
    meta_rm: with grm=, MetaRM@k in process: a `MetaRM` or its directory (`rewardscale train metarm`).
    k_meta: MetaRM@k voters (default k // 2); with url=, sent to a server started with --meta-rm.
    """

    def __init__(
        self,
        grm: GRM | None = None,
        url: str | None = None,
        k: int = 4,
        scale: Scale = "unit",
        max_group: int | None = None,
        abstain: float | None = None,
        name: str = "grm",
        timeout: float = 900.0,
        scorer: Scorer | None = None,
        meta_rm: SampleScorer | str | Path | None = None,
        k_meta: int | None = None,
    ):
        if scale not in SCALES:
            raise ValueError(f"unknown reward scale {scale!r}; choose one of: {', '.join(SCALES)}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if isinstance(meta_rm, (str, Path)):
            from ..metarm import MetaRM

            meta_rm = MetaRM.load(meta_rm)
        if k_meta is not None:
            k_meta_at(k, k_meta)  # below 1 is an error; above k is capped (at each call's k)
            if meta_rm is None and grm is not None:
                raise ValueError("k_meta needs a meta RM (meta_rm=...): MetaRM@k ranks the samples by its q")
        self.scorer = scorer or make_scorer(grm=grm, url=url, k=k, timeout=timeout, meta_rm=meta_rm)
        self.k = k
        self.k_meta = k_meta
        self.scale = scale
        self.max_group = max_group
        self.abstain = abstain
        self.__name__ = name

    def _group(self, prompts: Sequence[Any], completions: Sequence[Any]) -> Grouped:
        return group_by_prompt(prompts, completions, max_group=self.max_group)

    def _rewards(self, grouped: Grouped, results: list[dict[str, Any]]) -> list[float | None]:
        per_request = [scaled(r, self.scale) for r in results]
        out = []
        for ri, pos in grouped.where:
            value = per_request[ri][pos]
            out.append(self.abstain if value is None else value)
        return out


class GRMReward(_GRMRewardBase):
    """Synchronous TRL reward function: `(prompts, completions, **kwargs) -> list[float | None]`."""

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        grouped = self._group(prompts, completions)
        return self._rewards(grouped, self.scorer.score(grouped.requests, k=self.k, k_meta=self.k_meta))


class AsyncGRMReward(_GRMRewardBase):
    """Async TRL reward function (TRL runs async reward functions concurrently with each other on
    its own event loop): `await f(prompts, completions, **kwargs) -> list[float | None]`."""

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        grouped = self._group(prompts, completions)
        return self._rewards(grouped, await self.scorer.ascore(grouped.requests, k=self.k, k_meta=self.k_meta))
