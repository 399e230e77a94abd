"""GRM rewards for verl's custom reward function hook, through a `rewardscale serve` server.

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info)` per response
(NaiveRewardManager) or `compute_score(data_sources, solution_strs, ground_truths, extra_infos)`
once per batch (BatchRewardManager). It does not pass the prompt: put it in the data set's
`extra_info` under "query" (a string or a list of {role, content} messages), "question" or
"prompt". The batch variant groups responses to the same prompt into one GRM request (GRPO
rollouts of one prompt are judged side by side); the per-response variant scores each alone.

Settings come from verl's `custom_reward_function.reward_kwargs` (passed as keyword arguments) or
the environment: url (`$REWARDSCALE_URL`, default http://127.0.0.1:8000), k (`$REWARDSCALE_K`,
default: the server's), scale (`$REWARDSCALE_SCALE`, default unit), reference (append the ground
truth to the query as a reference answer; `$REWARDSCALE_REFERENCE=1`), abstain (reward when all
samples abstain, default 0.0).

    custom_reward_function.path=examples/verl/grm_reward.py   (re-exports these)
    custom_reward_function.name=compute_score_batch  reward_model.reward_manager=batch
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..scales import SCALES, scaled
from .client import RewardClient, default_url
from .text import group_by_prompt

QUERY_KEYS = ("query", "question", "prompt")
_clients: dict[str, RewardClient] = {}


@dataclass(frozen=True)
class Settings:
    url: str
    k: int | None
    scale: str
    reference: bool
    abstain: float

    @classmethod
    def resolve(cls, **kwargs: Any) -> Settings:
        """Keyword arguments (verl's reward_kwargs) first, then the environment, then defaults."""
        env = os.environ
        k = kwargs.get("k", env.get("REWARDSCALE_K"))
        scale = str(kwargs.get("scale", env.get("REWARDSCALE_SCALE", "unit")))
        if scale not in SCALES:
            raise ValueError(f"unknown reward scale {scale!r}; choose one of: {', '.join(SCALES)}")
        reference = kwargs.get("reference", env.get("REWARDSCALE_REFERENCE", "0"))
        return cls(
            url=str(kwargs.get("url") or default_url()),
            k=None if k in (None, "") else int(k),
            scale=scale,
            reference=str(reference).lower() in ("1", "true", "yes"),
            abstain=float(kwargs.get("abstain", 0.0)),
        )


def client(url: str) -> RewardClient:
    """One client (keep-alive connections) per server URL in this process."""
    if url not in _clients:
        _clients[url] = RewardClient(url)
    return _clients[url]


def query_of(extra_info: Any, ground_truth: Any, reference: bool) -> Any:
    """The prompt a verl response answers, from `extra_info` (see the module docstring)."""
    info = extra_info if isinstance(extra_info, dict) else {}
    for key in QUERY_KEYS:
        if info.get(key):
            query = info[key]
            break
    else:
        raise ValueError(
            f"verl passes no prompt to compute_score: put it in the data set's extra_info under one of "
            f"{', '.join(repr(k) for k in QUERY_KEYS)} (got extra_info keys {sorted(info)})"
        )
    if hasattr(query, "tolist"):  # numpy arrays from parquet
        query = query.tolist()
    if reference and ground_truth not in (None, ""):
        note = f"\n\n(Reference answer, for the judge only: {ground_truth})"
        if isinstance(query, str):
            return query + note
        query = [dict(m) for m in query]
        query[-1]["content"] = str(query[-1].get("content", "")) + note
    return query


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float]:
    """verl BatchRewardManager hook: one reward per response; responses to the same prompt are
    judged together in one GRM request, the whole batch in one server call."""
    settings = Settings.resolve(**kwargs)
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    queries = [query_of(info, gt, settings.reference) for info, gt in zip(infos, ground_truths)]
    grouped = group_by_prompt(queries, list(solution_strs))
    results = client(settings.url).score(grouped.requests, k=settings.k)
    per_request = [scaled(r, settings.scale) for r in results]  # type: ignore[arg-type]
    rewards = []
    for ri, pos in grouped.where:
        value = per_request[ri][pos]
        rewards.append(settings.abstain if value is None else value)
    return rewards


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> float:
    """verl per-response hook (NaiveRewardManager): a pointwise GRM rating of one response.
    Prefer `compute_score_batch`: it judges a prompt's rollouts together and makes one call."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
