"""Worked derivations: every line the program writes ends in the answer the checker accepts, for
every task a family makes, so a trained judge is never taught a wrong step."""

import re

import pytest

from rewardscale.template import parse
from rewardscale.train.checkers import check, fmt_number
from rewardscale.train.critiques import grounded_records, grounded_text
from rewardscale.train.derivations import derive, measured
from rewardscale.train.families import FAMILIES, Task, make_tasks

DERIVED = ["arithmetic", "word_problem", "units", "strings", "table", "dates"]


def final_value(task: Task, line: str) -> str:
    """What the derivation concludes: its last number, date, name or quoted word."""
    kind = task.check["kind"]
    if kind == "date":
        return re.findall(r"\d{4}-\d{2}-\d{2}", line)[-1]
    if kind == "choice":
        return line.split()[-1]
    if kind == "contains":
        return re.findall(r"'(\w+)'", line)[-1]
    if kind == "numbers":
        return "[" + line.split(": ", 1)[1] + "]"
    return re.findall(r"-?\d+(?:\.\d+)?", line.replace(",", ""))[-1]


@pytest.mark.parametrize("family", DERIVED)
def test_each_derivation_ends_in_the_checked_answer(family):
    tasks = make_tasks(40, seed=11, families=[family])
    derived = [(t, derive(t)) for t in tasks]
    lines = [(t, d) for t, d in derived if d is not None]
    # weekdays have no derivation; every other task of these families has one
    assert len(lines) >= (len(tasks) // 3 if family == "dates" else len(tasks))
    for task, line in lines:
        assert check(task.check, final_value(task, line)), (task.prompt, line, task.check.get("answer"))


def test_worked_steps_are_the_hand_method():
    mul = Task("m", "arithmetic", "What is 44 * 28 - 98?", {"kind": "number", "answer": 1134})
    assert derive(mul) == "44 * 28 = 44 * 20 + 44 * 8 = 880 + 352 = 1232; 1232 - 98 = 1134"
    sub = Task("s", "arithmetic", "What is 663 - 380?", {"kind": "number", "answer": 283})
    assert derive(sub) == "663 - 380 = 663 - 300 - 80 = 363 - 80 = 283"
    word = Task("c", "strings", "How many times does the letter 's' appear in the word 'compass'?", {})
    assert derive(word) == "'compass' is c-o-m-p-a-s-s; 's' appears 2 times"


def test_families_without_a_short_derivation_get_none():
    for family in ("code", "instructions"):
        assert all(derive(t) is None for t in make_tasks(5, seed=1, families=[family]))
    odd = Task("x", "arithmetic", "Compute 3 + 4, please.", {"kind": "number", "answer": 7})
    assert derive(odd) is None


def test_measured_counts_as_the_checker_counts():
    assert measured({"type": "max_words", "n": 5}, "Bees make golden honey daily too.") == "has 6 words"
    assert measured({"type": "bullets", "n": 2}, "- one\n- two\n1. three") == "has 3 bullet points"
    assert measured({"type": "forbid", "word": "x"}, "text") is None


def test_worked_records_derive_before_naming_the_answer_and_still_parse():
    task = Task("t", "arithmetic", "What is 17 * 23?", {"kind": "number", "answer": 391})
    rec = {"task": "t", "prompt": task.prompt, "id": "t-pair", "chosen": "391", "rejected": "401"}
    rows = grounded_records([rec], {"t": task}, worked=True)
    plain = grounded_records([rec], {"t": task})
    assert len(rows) == len(plain) == 2
    for row in rows:
        text = row["completion"][0]["content"]
        assert "17 * 23 = 17 * 20 + 17 * 3 = 340 + 51 = 391; the right answer is 391" in text
        assert text.index("= 391;") < text.index("Response 1")
        assert parse(text, 2).scores in ((9, 2), (2, 9))
    rules = {"kind": "rules", "rules": [{"type": "max_words", "n": 3}]}
    text, scores = grounded_text(rules, ["Bees are busy insects.", "Bees buzz."], best=1, counts=True)
    assert "Response 1 has 4 words, misses: at most 3 words: wrong." in text and scores == [2, 9]


def test_every_family_is_covered_or_named_here():
    # nothing to work out: code runs tests, rules count, safety asks whether to decline
    assert set(FAMILIES) == set(DERIVED) | {"code", "instructions", "safety"}
    assert fmt_number(588.0) == "588"
