"""Blind principles: the judge writes its criteria (and works out a right answer) from the
conversation alone, before it sees any response; each sample then continues that text with its
analysis and scores.

Why: a small judge that writes its principles with the responses in view copies the first-shown
response's answer into them as "the right answer" (measured on the dev pairs, README). Written
from the query alone, the criteria cannot be anchored on a response, and k samples that draw k
such drafts vote like self-consistency over the judge's own solutions.

`JudgeConfig.principles`: "joint" (the paper: principles, critique and scores in one generation),
"blind" (one draft per sample) or "shared" (one draft per request, reused by its k samples: one
short generation instead of k).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import plan as planning
from .backends.base import Completion, GenerationRequest
from .template import STRUCTURAL, SYSTEM, context_section
from .types import Message, Request

PRINCIPLE_MODES = ("joint", "blind", "shared")

INSTRUCTION = (
    "Below is a conversation between a user and an AI assistant. You will judge candidate "
    "responses to the user's last message, but you do not see them yet. Write the specific "
    "criteria that matter most for judging responses to THIS conversation, each with a weight "
    "(the weights sum to 100%). If the message has a right answer (a number, a date, a word, a "
    "list, the output of code), work it out yourself step by step and state it in the criteria; "
    "if it sets constraints (length, words, format), list each one."
)
OUTPUT = "Write one part only:\nSpecific Criteria: <your criteria, with weights>"

_LABEL = re.compile(r"^\W*specific criteria\W*:?\**\s*", re.IGNORECASE)
_BLANK_LINE = re.compile(r"\n\s*\n")


def render_principles(request: Request, checked: str | None = None) -> list[Message]:
    """The chat messages that ask for criteria from the conversation alone (no response in them),
    with what the rules show a draft (`rulefacts.before_drafts`: the checked answer, the note
    that some response declines) when there is any."""
    context = context_section(request.messages)
    parts = [INSTRUCTION, context, *([checked] if checked else []), OUTPUT]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def clean_draft(text: str) -> str:
    """A draft's criteria: without its `Specific Criteria:` label, cut at its first paragraph
    break and before anything that carries structure (a section header, an `Analysis:` or
    `Scores:` label, a `\\boxed`): a draft steered by the query can neither start the analysis
    nor write a verdict the parser would read as the sample's. Empty when nothing is left."""
    text = _LABEL.sub("", text.strip(), count=1)
    marker = STRUCTURAL.search(text)
    if marker:
        text = text[: marker.start()]
    return _BLANK_LINE.split(text.strip(), maxsplit=1)[0].strip()


def principles_prefix(criteria: str) -> str:
    """The assistant text a sample continues: its criteria, then the analysis label."""
    return f"Specific Criteria: {criteria}\n\nAnalysis:"


def drafts_per_request(mode: str, k: int) -> int:
    """How many drafts a request needs: one per sample (blind), one in all (shared)."""
    if mode not in PRINCIPLE_MODES:
        raise ValueError(f"principles must be one of {', '.join(PRINCIPLE_MODES)}, got {mode!r}")
    return {"joint": 0, "blind": k, "shared": 1}[mode]


def draft_requests(
    requests: Sequence[Request], mode: str, k: int, seed: int, checked: Sequence[str | None] | None = None
) -> list[GenerationRequest]:
    """The draft prompts of a batch: per request one prompt for all its drafts (n = k blind,
    1 shared; one prefill each), seeded from the request's content; none in joint mode.
    `checked[i]`: what the rules show request i's drafts (`rulefacts.before_drafts`), or None."""
    n = drafts_per_request(mode, k)
    if not n:
        return []
    return [
        GenerationRequest(
            messages=tuple(render_principles(r, None if checked is None else checked[i])),
            n=n,
            seed=planning.derive_seed(planning.request_seed(r, seed), "principles"),
        )
        for i, r in enumerate(requests)
    ]


def sample_prefix(drafts: Sequence[Completion], index: int) -> str | None:
    """The assistant text sample `index` continues: its own draft (blind) or its request's one
    (shared), cleaned; None (a joint sample) when the draft failed or nothing usable is left."""
    draft = drafts[index] if len(drafts) > 1 else drafts[0]
    criteria = "" if draft.error else clean_draft(draft.text)
    return principles_prefix(criteria) if criteria else None


def draft_tokens(drafts: Sequence[Sequence[Completion]] | None, request: int, index: int) -> int:
    """The draft tokens a sample is charged: its own draft (blind); a shared draft once, on the
    request's first sample."""
    if drafts is None:
        return 0
    own = drafts[request]
    if len(own) > 1:
        return own[index].tokens
    return own[0].tokens if index == 0 else 0
