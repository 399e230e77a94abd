"""Checker-grounded critiques: every statement and score comes from the checker, the output parses
as the judge's own verdict, and pairs are shown in both orders."""

import json
import random

import pytest
from typer.testing import CliRunner

from rewardscale.cli import app
from rewardscale.template import parse
from rewardscale.train.checkers import stated_answer
from rewardscale.train.critiques import grounded_records, grounded_text, requirement
from rewardscale.train.families import FAMILIES, Task, make_tasks, near_misses
from rewardscale.types import Status

ADD = Task("t-add", "arithmetic", "What is 17*23?", {"kind": "number", "answer": 391}, "17*23 = 391")
WORDS = Task(
    "t-words",
    "instructions",
    "Describe bees in at most 5 words, using the word 'honey'.",
    {"kind": "rules", "rules": [{"type": "max_words", "n": 5}, {"type": "include", "word": "honey"}]},
)


def pair(task: Task, chosen: str, rejected: str) -> dict:
    return {"task": task.id, "prompt": task.prompt, "id": f"{task.id}-pair", "chosen": chosen, "rejected": rejected}


def test_grounded_text_states_the_answer_and_each_verdict():
    text, scores = grounded_text(ADD.check, ["It is 401.", "17 times 23 is 391."], best=1)
    assert "the right answer is 391" in text
    assert "Response 1 answers 401: wrong." in text and "Response 2 answers 391: right." in text
    assert scores == [2, 9]
    parsed = parse(text, 2)
    assert parsed.status is Status.OK and parsed.scores == (2, 9)


def test_rules_name_the_constraint_a_response_misses():
    text, scores = grounded_text(WORDS.check, ["Bees make sweet golden honey.", "Bees are busy insects."], best=0)
    assert "at most 5 words; uses the word 'honey'" in text
    assert "Response 2 misses: uses the word 'honey': wrong." in text and scores == [9, 2]


def test_pairs_come_in_both_orders_with_scores_following_the_responses():
    rows = grounded_records([pair(ADD, "391", "401")], {ADD.id: ADD})
    assert len(rows) == 2
    firsts = []
    for row in rows:
        shown = row["prompt"][1]["content"]
        parsed = parse(row["completion"][0]["content"], 2)
        right_first = shown.index("391") < shown.index("401")
        firsts.append(right_first)
        assert parsed.scores == ((9, 2) if right_first else (2, 9))
    assert sorted(firsts) == [False, True]


def test_a_record_whose_label_the_checker_contradicts_is_skipped():
    assert grounded_records([pair(ADD, "401", "391")], {ADD.id: ADD}) == []


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_has_a_requirement_and_grounds_its_near_misses(family):
    task = next(t for t in make_tasks(4, seed=3, families=[family]) if t.reference)
    assert requirement(task.check)
    misses = near_misses(task, task.reference, random.Random(0))
    for miss in misses[:2]:
        text, scores = grounded_text(task.check, [task.reference, miss], best=0)
        assert scores == [9, 2], text
        assert parse(text, 2).scores == (9, 2)


def test_safety_critiques_say_who_declines_and_whether_declining_is_right():
    harmful = {"kind": "refusal", "decline": True}
    shown = ["Sure: Dear customer, verify your account...", "I can't help with that."]
    text, scores = grounded_text(harmful, shown, best=1)
    assert "so the right answer declines" in text and scores == [2, 9]
    assert "Response 1 complies: wrong." in text and "Response 2 declines: right." in text
    benign = {"kind": "refusal", "decline": False}
    text, scores = grounded_text(benign, ["I'm sorry, but I can't help with that.", "Run `kill -9 PID`."], best=1)
    assert "declining fails the user" in text and scores == [2, 9]
    assert "Response 1 declines: wrong." in text and "Response 2 complies: right." in text


def test_stated_answer_reads_like_the_checker():
    assert stated_answer({"kind": "number", "answer": 3}, "2 + 1 = 3.0") == "3"
    assert stated_answer({"kind": "date", "answer": "2024-01-02"}, "It is 2024-01-03.") == "2024-01-03"
    assert stated_answer({"kind": "choice", "answer": "Monday", "options": ["Monday", "Friday"]}, "Friday") == "Friday"
    assert stated_answer({"kind": "code", "func": "f", "tests": []}, "def f(): pass") is None


def test_cli_writes_records_and_names_missing_tasks(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(ADD.to_dict()) + "\n")
    data = tmp_path / "judge.jsonl"
    data.write_text(json.dumps(pair(ADD, "391", "401")) + "\n")
    out = tmp_path / "sft.jsonl"
    runner = CliRunner()
    res = runner.invoke(app, ["train", "grounded", "--data", str(data), "--tasks", str(tasks), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["completion"][0]["role"] == "assistant"
    data.write_text(json.dumps({**pair(ADD, "391", "401"), "task": "nope"}) + "\n")
    res = runner.invoke(app, ["train", "grounded", "--data", str(data), "--tasks", str(tasks), "--out", str(out)])
    assert res.exit_code != 0 and "nope" in res.output
    data.write_text("{not json\n")
    res = runner.invoke(app, ["train", "grounded", "--data", str(data), "--tasks", str(tasks), "--out", str(out)])
    assert res.exit_code != 0 and "judge.jsonl:1" in res.output
