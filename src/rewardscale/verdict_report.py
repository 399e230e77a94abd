"""Per-run verdict report: how many samples gave a verdict of their own, how many were forced,
how often a verdict ties, and how much the judge favours the position a response is shown in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .types import Judgment, Reward, Status

OWN_VERDICT = (Status.OK, Status.RECOVERED)


@dataclass(frozen=True)
class VerdictReport:
    """Rates over every sample of a run (retried samples count once, with their final status).

    verdict_rate_unforced: samples whose own text held a valid verdict (ok or recovered).
    forced_rate: samples whose verdict was forced; valid_rate = the two together.
    tie_rate: among valid samples with n >= 2, those whose top integer score is shared.
    tie_rate_expected: the same with expected scores, among samples that have them (else None).
    first_position_win_rate: among valid, untied samples with n >= 2, those whose unique top
        score went to the response shown first (an unbiased judge: 1/n on average).
    mean_score_by_position: mean integer score per shown position (n = 2 samples only).
    checked_rate: samples shown a code-checked answer (`JudgeConfig.code_check`); None when none was.
    """

    samples: int
    verdict_rate_unforced: float
    forced_rate: float
    valid_rate: float
    tie_rate: float | None
    tie_rate_expected: float | None
    first_position_win_rate: float | None
    expected_first_position_win_rate: float | None
    mean_score_by_position: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    checked_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        return (
            f"verdicts: {pct(self.verdict_rate_unforced)} own, {pct(self.forced_rate)} forced, "
            f"{pct(self.valid_rate)} valid of {self.samples}; ties {pct(self.tie_rate)}"
            + (f" (expected scores {pct(self.tie_rate_expected)})" if self.tie_rate_expected is not None else "")
            + f"; first shown wins {pct(self.first_position_win_rate)}"
            + (f"; code-checked {pct(self.checked_rate)}" if self.checked_rate is not None else "")
        )


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _top_shared(scores: Sequence[float]) -> bool:
    top = max(scores)
    return sum(1 for s in scores if s == top) > 1


def verdict_report(rewards: Iterable[Reward | Sequence[Judgment]]) -> VerdictReport:
    """Build the report from the rewards of a run (or from lists of judgments)."""
    samples = [j for r in rewards for j in (r.samples if isinstance(r, Reward) else r)]
    total = len(samples)
    statuses: dict[str, int] = {}
    for j in samples:
        statuses[j.status.value] = statuses.get(j.status.value, 0) + 1
    own = sum(j.status in OWN_VERDICT for j in samples)
    forced = sum(j.status is Status.FORCED for j in samples)
    multi = [j for j in samples if j.valid and j.shown_scores is not None and len(j.shown_scores) >= 2]
    ties = [_top_shared(j.shown_scores) for j in multi]  # type: ignore[arg-type]
    with_exp = [j for j in multi if j.expected is not None]
    exp_shown = [j.spec.to_shown(j.expected) for j in with_exp]  # type: ignore[arg-type]
    untied = [j.shown_scores for j, t in zip(multi, ties) if not t]
    first_wins = sum(s[0] == max(s) for s in untied)  # type: ignore[index]
    exp_untied = [s for s in exp_shown if not _top_shared(s)]
    pairs = [j.shown_scores for j in multi if len(j.shown_scores) == 2]  # type: ignore[arg-type]
    by_pos = [sum(s[p] for s in pairs) / len(pairs) for p in range(2)] if pairs else []  # type: ignore[index]
    checked = sum(j.checked is not None for j in samples)
    return VerdictReport(
        samples=total,
        verdict_rate_unforced=_rate(own, total) or 0.0,
        forced_rate=_rate(forced, total) or 0.0,
        valid_rate=_rate(own + forced, total) or 0.0,
        tie_rate=_rate(sum(ties), len(ties)),
        tie_rate_expected=_rate(sum(_top_shared(s) for s in exp_shown), len(exp_shown)),
        first_position_win_rate=_rate(first_wins, len(untied)),
        expected_first_position_win_rate=_rate(sum(s[0] == max(s) for s in exp_untied), len(exp_untied)),
        mean_score_by_position=by_pos,
        statuses=statuses,
        checked_rate=_rate(checked, total) if checked else None,
    )
