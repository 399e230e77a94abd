"""The sections a rule writes after the responses, from their own text: how each answer compares
with the code-checked output (`answers`) and the form counts the user's message asks about
(`forms`). One place, so the judge's prompt and a training record's prompt are the same."""

from __future__ import annotations

from collections.abc import Sequence

from .answers import comparison_for
from .config import JudgeConfig
from .forms import facts_for
from .types import Request


def after_responses(
    request: Request, permutation: Sequence[int], config: JudgeConfig, checked: str | None
) -> tuple[str, ...]:
    """The rule sections of one sample's prompt, in shown order (`JudgeConfig.compare_answers`
    with the request's checked output `checked`; `JudgeConfig.form_facts`); () when none."""
    sections = (
        comparison_for(request, permutation, checked) if config.compare_answers else None,
        facts_for(request, permutation) if config.form_facts else None,
    )
    return tuple(s for s in sections if s)
