"""Form facts: what a rule counts in each response (words, sentences, bullet points, paragraphs,
capital letters, characters, commas, JSON validity), stated to the judge when the user's message
asks about that form.

Why: "using only lowercase letters", "in under 50 words", "three bullet points" are checked by
counting, and a 1.5B judge cannot count the words or spot the one capital letter of a fluent
paragraph (the near-miss pairs of the dev set: README *Code-checked answers*). A rule counts
without fault; the judge still decides what the counts mean for the request. The counts are of
each response's own text, so a response cannot forge them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .template import defang
from .types import Request

SECTION = "#### Counted by Rule ####"
MAX_SHOWN_CAPITALS = 3  # capitalised words quoted as evidence


@dataclass(frozen=True)
class Fact:
    """One form property: the words in a user's message that ask about it, and what a rule
    says about a response."""

    name: str
    asked: re.Pattern[str]
    measure: Callable[[str], str]


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"\w", s)])


def _bullets(text: str) -> int:
    return len(re.findall(r"(?m)^\s*(?:[-*\u2022+]|\d+[.)])\s+\S", text))


def _paragraphs(text: str) -> int:
    return len([p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()])


def _capitals(text: str) -> str:
    n = sum(c.isupper() for c in text)
    if not n:
        return _count(0, "capital letter")
    words = re.findall(r"\b\w*[A-Z]\w*\b", text)
    shown = ", ".join(f"'{w}'" for w in words[:MAX_SHOWN_CAPITALS]) + (
        ", ..." if len(words) > MAX_SHOWN_CAPITALS else ""
    )
    return f"{_count(n, 'capital letter')} (in {shown})"


def _lowercase(text: str) -> str:
    return _count(sum(c.islower() for c in text), "lowercase letter")


def _json(text: str) -> str:
    body = re.sub(r"^```(?:json)?\s*\n(.*?)\n?```\s*$", r"\1", text.strip(), flags=re.DOTALL)
    try:
        json.loads(body)
    except ValueError:
        return "not valid JSON"
    return "valid JSON"


_HOW_MANY = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|single|a few)"
)


def _asks(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _counted(unit: str) -> re.Pattern[str]:
    """A message that gives a number of `unit`s ("in under 50 words", "a 3-sentence summary",
    "word limit"); a unit named without a number ("count the words in s") asks for no count."""
    return _asks(rf"\b{_HOW_MANY}[- ]{unit}s?\b|\b{unit} (?:count|limit)\b")


# A length in characters names a limit or a number of two digits or more ("under 280 characters",
# "a 40-character title"); a bare small number is the cast of a story ("with three characters").
_LIMIT = (
    r"(?:under|below|over|within|exactly|at most|at least|up to|no more than|fewer than|less than|more than|"
    r"max(?:imum)?(?: of)?)"
)
_CHARACTERS = _asks(
    rf"\b{_LIMIT} {_HOW_MANY}[- ]characters?\b|\b\d+-characters?\b|\b\d{{2,}} characters?\b"
    r"|\bcharacter (?:count|limit)\b"
)


FACTS: tuple[Fact, ...] = (
    Fact("words", _counted("word"), lambda t: _count(len(t.split()), "word")),
    Fact("sentences", _counted("sentence"), lambda t: _count(_sentences(t), "sentence")),
    Fact(
        "bullets", _asks(rf"\bbullet|\b{_HOW_MANY} (?:items|points)\b"), lambda t: _count(_bullets(t), "bullet point")
    ),
    Fact("paragraphs", _counted("paragraph"), lambda t: _count(_paragraphs(t), "paragraph")),
    Fact(
        "capitals",
        _asks(r"lower[- ]?case|capital letters?|capitali[sz]|\bcapitals\b|upper[- ]?case|all caps"),
        _capitals,
    ),
    Fact("lowercase", _asks(r"upper[- ]?case|all caps|all capital"), _lowercase),
    Fact("characters", _CHARACTERS, lambda t: _count(len(t), "character")),
    Fact("commas", _asks(r"\bcommas\b|\bany comma\b"), lambda t: _count(t.count(","), "comma")),
    Fact("json", re.compile(r"\b(?:in|as|valid|only) JSON\b|\bJSON (?:format|object|only)\b", re.I), _json),
)


def asked(message: str) -> list[Fact]:
    """The facts a user's message asks about (none: no section)."""
    return [f for f in FACTS if f.asked.search(message)]


def render_facts(message: str, shown: Sequence[str]) -> str | None:
    """The section that states, per shown response, the counts the user's `message` asks about
    (None when it asks about none)."""
    facts = asked(message)
    if not facts:
        return None
    body = "\n".join(
        f"- Response {pos}: " + "; ".join(f.measure(r) for f in facts) + "." for pos, r in enumerate(shown, start=1)
    )
    return (
        f"{SECTION}\n"
        "The user's message asks about the form of the answer. A rule (not you) counted in each response:\n"
        f"{defang(body)}\n"
        "Compare these counts with what the user asked for: a response that breaks a stated limit "
        "or form fails that instruction."
    )


def facts_for(request: Request, permutation: Sequence[int]) -> str | None:
    """`render_facts` for one sample's prompt: the request's last user message, its responses in
    shown order."""
    message = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
    return render_facts(message, [request.responses[i] for i in permutation])
