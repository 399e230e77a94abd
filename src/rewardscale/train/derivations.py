"""Worked derivations of a task's right answer, written by the program from the task's prompt.

A small judge trained on "the right answer is X" learns to copy X from the first response it
sees (2026-12-01: the grounded 1.5B judge said "the right answer is 222.6 grams" whenever the
wrong 222.6 was shown first). A derivation makes it compute before it reads the responses:
`44 * 28 = 44 * 20 + 44 * 8 = 880 + 352 = 1232`, letters spelled out before they are counted.
Each line is derived from the prompt alone and checked against the task's answer (tests), so a
derivation never states anything the checker would not.

    derive(task)  # -> "24.5 days = 24.5 * 24 hours = 588 hours" or None (no derivation)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from .checkers import BULLET, SENTENCE_END, fmt_number, words
from .families import UNITS, WORD_PROBLEMS, Task


def _times(a: int, b: int) -> tuple[str, int]:
    """`a * b` split on b's tens and ones, the way one multiplies by hand."""
    tens, ones = b - b % 10, b % 10
    if b < 10 or ones == 0 or tens == 0:
        return f"{a} * {b} = {a * b}", a * b
    return f"{a} * {b} = {a} * {tens} + {a} * {ones} = {a * tens} + {a * ones} = {a * b}", a * b


def arithmetic(prompt: str) -> str | None:
    """Products first (by hand), then sums and differences left to right."""
    m = re.fullmatch(r"What is ([\d\s+*-]+)\?", prompt.strip())
    if not m:
        return None
    tokens = m.group(1).split()
    steps, terms, ops = [], [int(tokens[0])], []
    for op, num in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            step, value = _times(terms[-1], int(num))
            steps.append(step)
            terms[-1] = value
        else:
            ops.append(op)
            terms.append(int(num))
    total = terms[0]
    for op, x in zip(ops, terms[1:]):
        new = total + x if op == "+" else total - x
        hundreds = x - x % 100
        if op == "-" and hundreds and x % 100:  # 663 - 380 = 663 - 300 - 80 = 363 - 80 = 283
            mid = total - hundreds
            steps.append(f"{total} - {x} = {total} - {hundreds} - {x % 100} = {mid} - {x % 100} = {new}")
        else:
            steps.append(f"{total} {op} {x} = {new}")
        total = new
    return "; ".join(steps) if steps else None


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>\\d+)" for i, p in enumerate(parts))
    return re.compile(pattern)


_WORD_REGEX = [(_template_regex(text), solve, steps) for text, solve, steps in WORD_PROBLEMS]


def word_problem(prompt: str) -> str | None:
    """The template's worked steps over the numbers read back from the prompt."""
    for regex, solve, steps in _WORD_REGEX:
        if m := regex.fullmatch(prompt.strip()):
            v = {k: int(x) for k, x in m.groupdict().items()}
            return steps.format(**v, pq=v["p"] * v["q"], pr=v["p"] + v.get("r", 0), ans=solve(v))
    return None


def units(prompt: str) -> str | None:
    m = re.fullmatch(r"How many (\w+) are in ([\d.]+) (\w+)\?", prompt.strip())
    if not m:
        return None
    small, x, big = m.group(1), float(m.group(2)), m.group(3)
    for b, s, factor in UNITS:
        if (b, s) == (big, small):
            one = big[:-1] if big.endswith("s") else big
            x_, total = fmt_number(x), fmt_number(x * factor)
            return f"1 {one} = {factor} {small}, so {x_} {big} = {x_} * {factor} = {total} {small}"
    return None


def strings(prompt: str) -> str | None:
    prompt = prompt.strip()
    if m := re.fullmatch(r"Reverse the letters of the word '(\w+)'\.", prompt):
        w = m.group(1)
        return f"'{w}' is {'-'.join(w)}; backwards {'-'.join(w[::-1])}, so '{w[::-1]}'"
    if m := re.fullmatch(r"How many times does the letter '(\w)' appear in the word '(\w+)'\?", prompt):
        letter, w = m.groups()
        return f"'{w}' is {'-'.join(w)}; '{letter}' appears {w.count(letter)} time{'s' * (w.count(letter) != 1)}"
    if m := re.search(r"ascending order .*: \[([\d, ]+)\]$", prompt):
        xs = sorted(int(x) for x in m.group(1).split(","))
        return f"smallest to largest: {', '.join(map(str, xs))}"
    if m := re.fullmatch(r"What is the second largest number in this list: ([\d, ]+)\?", prompt):
        xs = sorted({int(x) for x in m.group(1).split(",")}, reverse=True)
        return f"largest first: {', '.join(map(str, xs))}; the second is {xs[1]}"
    return None


def _rows(prompt: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in prompt.splitlines()
        if line.startswith("| ") and not line.startswith("| City")
    ]


def table(prompt: str) -> str | None:
    rows = _rows(prompt)
    question = prompt.strip().splitlines()[-1]
    if not rows:
        return None
    if m := re.fullmatch(r"How many cities in the table are in (\w+)\?", question):
        hits = [r[0] for r in rows if r[1] == m.group(1)]
        return f"cities in {m.group(1)}: {', '.join(hits) if hits else 'none'}, so {len(hits)}"
    if question.endswith("has the largest population?"):
        listed = ", ".join(f"{r[0]} {r[2]}" for r in rows)
        best = max(rows, key=lambda r: int(r[2].replace(",", "")))
        return f"populations: {listed}; the largest is {best[0]}"
    if question.endswith("was founded first?"):
        listed = ", ".join(f"{r[0]} {r[3]}" for r in rows)
        first = min(rows, key=lambda r: int(r[3]))
        return f"founded: {listed}; the earliest is {first[0]}"
    if m := re.fullmatch(r"In which year was (\w+) founded\?", question):
        row = next((r for r in rows if r[0] == m.group(1)), None)
        return None if row is None else f"the table's row for {row[0]} says {row[3]}"
    return None


def dates(prompt: str) -> str | None:
    """Days after a date, month by month (weekdays have no short derivation)."""
    m = re.match(r"What date is (\d+) days after (\d{4}-\d{2}-\d{2})\?", prompt.strip())
    if not m:
        return None
    left, day = int(m.group(1)), dt.date.fromisoformat(m.group(2))
    steps = []
    while left > 0:
        month_end = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        to_end = (month_end - day).days
        if left <= to_end:
            day += dt.timedelta(days=left)
            steps.append(f"+{left} -> {day.isoformat()}")
            left = 0
        else:
            step = to_end + 1  # to the first of next month
            day += dt.timedelta(days=step)
            left -= step
            steps.append(f"+{step} -> {day.isoformat()}")
    return f"{m.group(2)} " + "; ".join(steps)


DERIVERS: dict[str, Callable[[str], str | None]] = {
    "arithmetic": arithmetic,
    "word_problem": word_problem,
    "units": units,
    "strings": strings,
    "table": table,
    "dates": dates,
}


def derive(task: Task) -> str | None:
    """A worked line ending in the task's answer, or None where the family has none (code,
    instructions, weekdays) or the prompt is not one the family writes."""
    deriver = DERIVERS.get(task.family)
    return deriver(task.prompt) if deriver else None


def measured(rule: dict, text: str) -> str | None:
    """What a counting rule measures in a response (`has 14 words`), counted as its checker
    counts, so a judge reads the count instead of guessing it; None for rules that count nothing."""
    kind = rule["type"]
    if kind in ("max_words", "min_words", "exact_words"):
        return f"has {len(words(text))} words"
    if kind == "bullets":
        return f"has {len(BULLET.findall(text))} bullet points"
    if kind == "sentences":
        return f"has {len(SENTENCE_END.findall(text.strip()))} sentence(s)"
    return None
