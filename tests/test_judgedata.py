"""The judge's verifiable training data: every checker on a right and a wrong answer, every family's
reference right and near misses wrong, the train/dev split disjoint, records loadable."""

import json
import random

import pytest

from rewardscale.train.checkers import CheckError, check, detect_language, failed_rules, last_number
from rewardscale.train.data import load_examples
from rewardscale.train.families import FAMILIES, Task, make_tasks, near_misses
from rewardscale.train.judgedata import (
    DEV_CODE_FUNCS,
    build_records,
    grade,
    make_split_tasks,
    sample_responses,
    summarize,
)

from .fakes import FakeBackend

RIGHT_WRONG = [
    ({"kind": "number", "answer": 391}, "17 * 23 = 391", "17 * 23 = 401"),
    ({"kind": "number", "answer": 1500}, "That is 1,500 metres.", "That is 150 metres."),
    ({"kind": "number", "answer": 7.5}, "It takes 7.5 hours.", "It takes 7 hours."),
    ({"kind": "numbers", "answer": [1, 3, 9]}, "Sorted: [1, 3, 9]", "Sorted: [1, 9, 3]"),
    ({"kind": "date", "answer": "2024-03-05"}, "The date is 2024-03-05.", "The date is 2024-03-04."),
    (
        {"kind": "choice", "answer": "Tuesday", "options": ["Monday", "Tuesday", "Friday"]},
        "Not Monday: it was a Tuesday.",
        "It was a Tuesday... no, a Friday.",
    ),
    ({"kind": "contains", "answer": "tenalp"}, "The reversed word is 'tenalp'.", "It is 'tenlap'."),
    (
        {"kind": "code", "func": "double", "tests": [[[2], 4], [[-1], -2]]},
        "```python\ndef double(x):\n    return 2 * x\n```",
        "```python\ndef double(x):\n    return x + 2\n```",
    ),
    ({"kind": "refusal", "decline": True}, "I can't help with forging a signature.", "Sure: trace it from a letter."),
    ({"kind": "refusal", "decline": True}, "It is illegal to forge a signature.", "Trace it from an old letter."),
    ({"kind": "refusal", "decline": False}, "Run `kill -9 PID`.", "I'm sorry, but I can't help with killing anything."),
    ({"kind": "refusal", "decline": False}, "You cannot mix bleach and ammonia.", "I won't explain that."),
]

RULES = [
    ({"type": "max_words", "n": 5}, "Waves crash on rocks.", "Waves crash loudly on the rocks today."),
    ({"type": "min_words", "n": 3}, "one two three", "one two"),
    ({"type": "exact_words", "n": 2}, "Hello there", "Hello there friend"),
    ({"type": "bullets", "n": 2}, "- a\n- b", "- a\n- b\n- c"),
    ({"type": "sentences", "n": 1}, "The moon is bright.", "The moon is bright. It is night."),
    ({"type": "include", "word": "quiet"}, "A quiet sea.", "A calm sea."),
    ({"type": "forbid", "word": "water"}, "The sea is vast.", "The sea is full of water."),
    ({"type": "lowercase"}, "all lower here", "Not all lower"),
    ({"type": "uppercase"}, "ALL CAPS HERE", "ALL CAPS Here"),
    ({"type": "json_keys", "keys": ["name", "age"]}, '{"name": "A", "age": 3}', '{"name": "A"}'),
    (
        {"type": "csv", "rows": 1, "columns": 2, "header": ["name", "age"]},
        "name,age\nAna,31",
        "name,age\nAna,31,x",
    ),
    ({"type": "ends_with", "text": "That is all."}, "Done. That is all.", "That is all. Done."),
    ({"type": "starts_with", "text": "Yes"}, "Yes, it is.", "It is, yes."),
    ({"type": "language", "lang": "fr"}, "Le café est une boisson que les gens aiment.", "Coffee is a drink."),
    ({"type": "only", "options": ["yes"]}, "Yes.", "Yes, because 17 has no divisors."),
    ({"type": "no_commas"}, "No commas here.", "One, two."),
]


@pytest.mark.parametrize(("spec", "right", "wrong"), RIGHT_WRONG, ids=[s["kind"] for s, _, _ in RIGHT_WRONG])
def test_checker_right_and_wrong(spec, right, wrong):
    assert check(spec, right) is True
    assert check(spec, wrong) is False


@pytest.mark.parametrize(("rule", "right", "wrong"), RULES, ids=[r["type"] for r, _, _ in RULES])
def test_rule_right_and_wrong(rule, right, wrong):
    spec = {"kind": "rules", "rules": [rule]}
    assert check(spec, right) is True
    assert check(spec, wrong) is False
    assert failed_rules(spec, wrong) == [rule["type"]]


def test_checker_edge_cases():
    assert last_number("no numbers") is None
    assert last_number("from 3 to -12.5") == -12.5
    assert check({"kind": "number", "answer": 4}, "no answer") is False
    assert check({"kind": "code", "func": "f", "tests": [[[1], 1]]}, "def f(x):\n    while True: pass") is False
    assert detect_language("") is None
    with pytest.raises(CheckError, match="unknown check kind"):
        check({"kind": "vibes"}, "x")
    with pytest.raises(CheckError, match="unknown rule type"):
        check({"kind": "rules", "rules": [{"type": "vibes"}]}, "x")


def test_every_family_reference_right_and_near_misses_wrong():
    tasks = make_tasks(12, seed=3)
    assert {t.family for t in tasks} == set(FAMILIES)
    rng = random.Random(0)
    with_misses = 0
    for t in tasks:
        if t.reference is None:
            continue
        assert t.is_right(t.reference), (t.prompt, t.reference)
        misses = near_misses(t, t.reference, rng)
        assert all(not t.is_right(m) for m in misses)
        with_misses += bool(misses)
    assert with_misses >= len([t for t in tasks if t.reference]) * 0.8


def test_tasks_round_trip_and_are_seeded():
    a, b = make_tasks(3, seed=7), make_tasks(3, seed=7)
    assert a == b
    assert [Task.from_dict(json.loads(json.dumps(t.to_dict()))) for t in a] == a
    assert make_tasks(3, seed=8) != a


def test_split_is_disjoint_and_code_is_held_out():
    train, dev = make_split_tasks(10, 4, seed=0)
    assert not {t.prompt for t in train} & {t.prompt for t in dev}
    assert {t.meta["func"] for t in dev if t.family == "code"} <= DEV_CODE_FUNCS
    assert not {t.meta["func"] for t in train if t.family == "code"} & DEV_CODE_FUNCS
    assert {t.family for t in dev} == set(FAMILIES)


def test_records_from_graded_responses_are_labelled_right(tmp_path):
    tasks = make_tasks(4, seed=1, families=["arithmetic", "instructions"])
    backend = FakeBackend(lambda shown, seed, i: "The answer is 5." if i % 2 else "the sea is calm and wide.")
    made = sample_responses(backend, "fake", tasks, [0.5, 1.0], 2, tmp_path / "r.jsonl")
    assert made == len(tasks) * 2 * 2
    # resumes: nothing is generated twice
    assert sample_responses(backend, "fake", tasks, [0.5, 1.0], 2, tmp_path / "r.jsonl") == 0
    responses = [json.loads(line) for line in open(tmp_path / "r.jsonl")]
    graded = grade(tasks, responses)
    records = build_records(tasks, graded, "train")
    assert records and summarize(records)["records"] == len(records)
    by_id = {t.id: t for t in tasks}
    for r in records:
        task = by_id[r["task"]]
        if "chosen" in r:
            assert task.is_right(r["chosen"]) and not task.is_right(r["rejected"])
        elif "responses" in r:
            assert [task.is_right(x) for x in r["responses"]].count(True) >= 1
            assert task.is_right(r["responses"][r["best"]])
        else:
            assert task.is_right(r["response"]) == r["label"]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert len(load_examples(path)) == len(records)
