"""How a scored result (`Reward.to_dict(request=False)`, the server's wire format) becomes a
scalar RL reward, one rule for the server and the RL integrations (TRL, verl). Imports no web
framework, so the integrations need neither the `[serve]` extra nor the server package."""

from __future__ import annotations

from typing import Any, Literal

Scale = Literal["unit", "mean", "sum"]
SCALES: tuple[str, ...] = ("unit", "mean", "sum")


def scaled(result: dict[str, Any], scale: Scale = "unit") -> list[float | None]:
    """The scalar reward of each response in a result, or None where every sample abstained.

    unit: mean score mapped from 1..10 to 0..1 (default: independent of k, combines with 0/1
        rule-based rewards); mean: mean score 1..10; sum: the paper's Voting@k sum (k..10k when
        all k samples are valid, so abstentions lower it; prefer unit or mean for RL).
    The mean is taken over the valid samples only, so a sample that did not parse abstains instead
    of counting as a low score.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown reward scale {scale!r}; choose one of: {', '.join(SCALES)}")
    if not result.get("n_valid"):
        return [None] * len(result["rewards"])
    if scale == "sum":
        return [float(r) for r in result["rewards"]]
    means = [float(m) for m in result["mean_scores"]]
    if scale == "mean":
        return means
    return [(m - 1.0) / 9.0 for m in means]
