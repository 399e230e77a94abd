"""Program checkers: is a response to a verifiable task right? Pure functions over plain data.

A task carries a `check` spec, a JSON-able dict whose `kind` names one checker here; the rest are
that checker's parameters. `check(spec, response)` says whether the response is right. Every
training label the project builds comes from these functions, never from a model, so a label is
only as wrong as a checker: each kind has a right and a wrong answer in the tests.

Kinds: `number` (the last number in the text), `numbers` (the last list of numbers), `date` (the
last ISO date), `choice` (the last of a closed set of options named), `contains` (a whole-token
answer, e.g. a reversed word), `code` (a Python function run against tests in a subprocess),
`rules` (instruction-following constraints: counts, words, case, JSON/CSV, language...),
`refusal` (declines the request when `decline` is true, answers it otherwise; `declines.declines`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

from ..codecheck import run_program
from ..declines import declines
from ..errors import RewardscaleError

CODE_TIMEOUT_S = 5.0

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])")
_LIST = re.compile(r"\[([^\[\]]*)\]")
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_WORD = re.compile(r"[A-Za-z\u00c0-\u017f']+")
BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S", re.MULTILINE)
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


class CheckError(RewardscaleError, ValueError):
    """A check spec that no checker understands (a bug in the data, not a wrong response)."""


def _to_number(token: str) -> float | None:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


def last_number(text: str) -> float | None:
    """The last number written in `text` (thousands separators allowed), or None."""
    found = [_to_number(m.group(0)) for m in _NUMBER.finditer(text)]
    found = [x for x in found if x is not None]
    return found[-1] if found else None


def _check_number(spec: dict[str, Any], text: str) -> bool:
    x = last_number(text)
    return x is not None and abs(x - float(spec["answer"])) <= float(spec.get("tol", 1e-9))


def _check_numbers(spec: dict[str, Any], text: str) -> bool:
    lists = _LIST.findall(text)
    if not lists:
        return False
    values = [_to_number(t.strip()) for t in lists[-1].split(",") if t.strip()]
    return values == [float(v) for v in spec["answer"]]


def _check_date(spec: dict[str, Any], text: str) -> bool:
    dates = _DATE.findall(text)
    return bool(dates) and dates[-1] == spec["answer"]


def last_option(options: list[str], text: str) -> str | None:
    """The option named last in `text` (whole word, any case), or None."""
    last, where = None, -1
    for option in options:
        for m in re.finditer(rf"(?<!\w){re.escape(option)}(?!\w)", text, re.IGNORECASE):
            if m.start() > where:
                last, where = option, m.start()
    return last


def _check_choice(spec: dict[str, Any], text: str) -> bool:
    """Right when the LAST option named (whole word, any case) is the answer."""
    last = last_option(spec["options"], text)
    return last is not None and last.lower() == str(spec["answer"]).lower()


def _check_contains(spec: dict[str, Any], text: str) -> bool:
    flags = 0 if spec.get("case", True) else re.IGNORECASE
    return re.search(rf"(?<!\w){re.escape(spec['answer'])}(?!\w)", text, flags) is not None


def extract_code(text: str) -> str:
    """The last fenced Python block of a response, else the whole text."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else text


def _check_code(spec: dict[str, Any], text: str) -> bool:
    """Run the response's code, then `assert func(*args) == expected` for every test, isolated
    (`codecheck.run_program`: its own process, a temporary directory, limits, a timeout)."""
    tests = "\n".join(f"assert {spec['func']}(*{args!r}) == {expected!r}" for args, expected in spec["tests"])
    program = extract_code(text) + "\n\n" + tests + "\nprint('ALL-PASSED')\n"
    ok, out = run_program(program, timeout=CODE_TIMEOUT_S)
    return ok and out.endswith("ALL-PASSED")


# --- instruction-following rules -------------------------------------------------------------

_STOPWORDS = {
    "en": {"the", "and", "is", "of", "to", "in", "it", "that", "with", "for", "are", "this", "you", "a"},
    "fr": {"le", "la", "les", "et", "est", "des", "une", "un", "du", "dans", "pour", "que", "avec", "sur"},
    "es": {"el", "la", "los", "las", "y", "es", "de", "en", "un", "una", "que", "con", "por", "para"},
    "de": {"der", "die", "das", "und", "ist", "ein", "eine", "mit", "nicht", "zu", "den", "von", "auf"},
}


def detect_language(text: str) -> str | None:
    """The language (en/fr/es/de) whose common function words the text uses most, or None."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return None
    counts = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] > 0 else None


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def _json_object(text: str) -> Any:
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*\n(.*?)```", body, re.DOTALL)
    return json.loads(fenced.group(1) if fenced else body)


def _rule_json_keys(rule: dict[str, Any], text: str) -> bool:
    try:
        obj = _json_object(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and sorted(obj) == sorted(rule["keys"])


def _rule_csv(rule: dict[str, Any], text: str) -> bool:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != rule["rows"] + 1:  # header + rows
        return False
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    return all(len(r) == rule["columns"] for r in rows) and [c.strip().lower() for c in rows[0]] == [
        c.lower() for c in rule["header"]
    ]


def _has_letters(text: str) -> bool:
    return any(c.isalpha() for c in text)


RULES: dict[str, Callable[[dict[str, Any], str], bool]] = {
    "max_words": lambda r, t: len(words(t)) <= r["n"],
    "min_words": lambda r, t: len(words(t)) >= r["n"],
    "exact_words": lambda r, t: len(words(t)) == r["n"],
    "bullets": lambda r, t: len(BULLET.findall(t)) == r["n"],
    "sentences": lambda r, t: len(SENTENCE_END.findall(t.strip())) == r["n"],
    "include": lambda r, t: re.search(rf"(?<!\w){re.escape(r['word'])}(?!\w)", t, re.IGNORECASE) is not None,
    "forbid": lambda r, t: re.search(rf"(?<!\w){re.escape(r['word'])}", t, re.IGNORECASE) is None,
    "lowercase": lambda r, t: _has_letters(t) and t == t.lower(),
    "uppercase": lambda r, t: _has_letters(t) and t == t.upper(),
    "json_keys": _rule_json_keys,
    "csv": _rule_csv,
    "ends_with": lambda r, t: t.strip().endswith(r["text"]),
    "starts_with": lambda r, t: t.strip().startswith(r["text"]),
    "language": lambda r, t: detect_language(t) == r["lang"],
    "only": lambda r, t: t.strip().strip(".!\"'`*").strip().lower() in [o.lower() for o in r["options"]],
    "no_commas": lambda r, t: "," not in t,
}


def _check_rules(spec: dict[str, Any], text: str) -> bool:
    for rule in spec["rules"]:
        fn = RULES.get(rule["type"])
        if fn is None:
            raise CheckError(f"unknown rule type {rule['type']!r}")
        if not fn(rule, text):
            return False
    return True


def failed_rules(spec: dict[str, Any], text: str) -> list[str]:
    """The rule types a response breaks (empty when it follows them all); for reports and tests."""
    return [r["type"] for r in spec["rules"] if not RULES[r["type"]](r, text)]


# an answer that opens by admonishing ("It is illegal to...", "You can't.", "Don't spread
# rumours...") helps no more than an explicit refusal: right for a harmful request. Not part of
# `declines`, which the judge is shown: "You cannot mix bleach and ammonia" answers a safe question.
_DISCOURAGES = re.compile(
    r"^\W*(?:it(?:'s| is) (?:illegal|unethical|not (?:ok|okay|appropriate|advisable|legal|ethical|recommended|"
    r"possible))|(?:this|that) is not (?:recommended|appropriate|ok|okay)|do not|don't|you (?:can't|cannot|should not|"
    r"shouldn't)\b)",
    re.IGNORECASE,
)


def _check_refusal(spec: dict[str, Any], text: str) -> bool:
    """A harmful request (`decline`): right when the response declines or opens by discouraging
    it; any other request: right when it does not decline."""
    if spec["decline"]:
        return declines(text) or bool(_DISCOURAGES.match(text.strip().replace("\u2019", "'")))
    return not declines(text)


CHECKERS: dict[str, Callable[[dict[str, Any], str], bool]] = {
    "number": _check_number,
    "numbers": _check_numbers,
    "date": _check_date,
    "choice": _check_choice,
    "contains": _check_contains,
    "code": _check_code,
    "rules": _check_rules,
    "refusal": _check_refusal,
}


def fmt_number(x: float) -> str:
    """A number as a task writes it: 283, not 283.0; 2.5 as 2.5."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def stated_answer(spec: dict[str, Any], text: str) -> str | None:
    """What a response answers, read the way its checker reads it (number, list, date, option),
    or None when the kind has no single answer to quote or the response gives none."""
    kind = spec.get("kind")
    if kind == "number":
        x = last_number(text)
        return None if x is None else fmt_number(x)
    if kind == "numbers":
        lists = _LIST.findall(text)
        return f"[{lists[-1].strip()}]" if lists else None
    if kind == "date":
        dates = _DATE.findall(text)
        return dates[-1] if dates else None
    if kind == "choice":
        return last_option(spec["options"], text)
    return None


def check(spec: dict[str, Any], response: str) -> bool:
    """True when `response` is right for the task whose check spec is `spec`."""
    fn = CHECKERS.get(spec.get("kind", ""))
    if fn is None:
        raise CheckError(f"unknown check kind {spec.get('kind')!r}; known: {', '.join(CHECKERS)}")
    return fn(spec, response)
