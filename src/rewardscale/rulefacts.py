"""The sections a rule writes after the responses, from their own text: how each answer compares
with the code-checked output (`answers`), the form counts the user's message asks about
(`forms`) and which responses decline the request (`declines`), and what a principles draft is
shown before any response. One place, so the judge's prompt and a training record's prompt are
the same."""

from __future__ import annotations

from collections.abc import Sequence

from .answers import comparison_for
from .config import JudgeConfig
from .declines import declines_for, draft_note
from .forms import facts_for
from .types import Request


def after_responses(
    request: Request, permutation: Sequence[int], config: JudgeConfig, checked: str | None
) -> tuple[str, ...]:
    """The rule sections of one sample's prompt, in shown order (`JudgeConfig.compare_answers`
    with the request's checked output `checked`; `JudgeConfig.form_facts`;
    `JudgeConfig.decline_facts`); () when none."""
    sections = (
        comparison_for(request, permutation, checked) if config.compare_answers else None,
        facts_for(request, permutation) if config.form_facts else None,
        declines_for(request, permutation) if config.decline_facts else None,
    )
    return tuple(s for s in sections if s)


def before_drafts(requests: Sequence[Request], config: JudgeConfig, checked: Sequence[str | None]) -> list[str | None]:
    """Per request, what its principles drafts are shown besides the conversation: its checked
    answer (`checked[i]`) and, with `JudgeConfig.decline_facts`, the note that some response
    declines (`declines.draft_note`); None when nothing."""
    out: list[str | None] = []
    for request, check in zip(requests, checked):
        note = draft_note(request) if config.decline_facts else None
        parts = [s for s in (check, note) if s]
        out.append("\n\n".join(parts) if parts else None)
    return out
