"""One Example and one Label for bench, train and the meta RM; one record reader."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from rewardscale.bench import load
from rewardscale.correctness import InvalidLabel, Label, is_correct
from rewardscale.examples import DataError, Example, Kind, read_records
from rewardscale.metarm.data import read_examples, sample_correct
from rewardscale.train.data import load_examples
from rewardscale.types import Judgment, Request, SampleSpec, Status

DATA = Path(__file__).parent / "data"


def test_a_label_names_one_best_response_or_several():
    assert Label(best=[1]) == Label(best=1) and Label(best=(2, 0, 2)).best == (0, 2)
    assert Label(best=(0, 2)).to_dict() == {"best": [0, 2]} and Label(best=1).to_dict() == {"best": 1}
    assert Label.from_dict({"best": [2, 0]}) == Label(best=(0, 2)) and Label.from_good([False, True]) == Label(best=1)
    assert Label(best=(0, 2)).sole_best is None and Label(best=2).sole_best == 2
    with pytest.raises(InvalidLabel, match="no response is marked"):
        Label(best=()).check(3)
    with pytest.raises(InvalidLabel, match="best index 3 is out of range"):
        Label(best=(0, 3)).check(3)


@pytest.mark.parametrize(
    "scores, best, right",
    [((9, 2, 8), (0, 2), True), ((8, 2, 9), (0, 2), True), ((9, 2, 9), (0, 2), False), ((2, 9, 8), (0, 2), False)],
)
def test_one_rule_for_several_acceptable_picks(scores, best, right):
    """The strict leader must be one of the picks (a tie for first is wrong), as the meta RM's
    `good` flags always said; one pick is the paper's rule."""
    label = Label(best=best)
    assert is_correct(scores, label) is right
    assert sample_correct(scores, good=[i in best for i in range(3)]) is right


def test_bench_train_and_metarm_build_the_same_example_type(tmp_path):
    bench = load("ppe-correctness", DATA / "ppe_correctness.jsonl")[0]
    assert isinstance(bench, Example) and bench.label == Label(best=(0, 2)) and bench.kind is Kind.BEST_OF_N
    assert bench.good == (True, False, True, False) and bench.has_error is None
    binary = load("realmistake", DATA / "realmistake.jsonl")[1]
    assert binary.kind is Kind.BINARY and binary.label == Label(good=False) and binary.has_error is True
    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "q", "response": "a", "rating": 7}) + "\n")
    rated = load_examples(tmp_path / "t.jsonl")[0]
    assert isinstance(rated, Example) and rated.kind is Kind.RATING and rated.source == f"{tmp_path / 't.jsonl'}:1"
    row = {
        "benchmark": "generic",
        "id": "x",
        "good": [False, True],
        "request": Request.make("q", ["a", "b"]).to_dict(),
        "samples": [],
    }
    (tmp_path / "s.jsonl").write_text(json.dumps(row) + "\n")
    (meta,) = read_examples(tmp_path / "s.jsonl")
    assert isinstance(meta.example, Example) and meta.label == Label(best=1) and meta.good == (False, True)


def test_example_checks_its_label_against_its_request():
    pair = Request.make("q", ["a", "b"])
    with pytest.raises(InvalidLabel, match="out of range"):
        Example(pair, Label(best=2))
    with pytest.raises(InvalidLabel, match="binary"):
        Example(Request.make("q", ["a"]), Label(rating=3), kind=Kind.BINARY)
    assert Example(pair, Label(best=0), kind=Kind.BOTH_ORDERS).kind is Kind.BOTH_ORDERS


def test_one_reader_one_location_syntax(tmp_path):
    records = [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "r", "chosen": "c", "rejected": "d"}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "d.json").write_text(json.dumps({"data": records}))
    assert [loc for loc, _ in read_records(tmp_path / "d.jsonl")] == [f"{tmp_path / 'd.jsonl'}:{i}" for i in (1, 2)]
    assert [loc for loc, _ in read_records(tmp_path / "d.json")] == [f"{tmp_path / 'd.json'}[{i}]" for i in (0, 1)]
    assert [e.source for e in load_examples(tmp_path / "d.json")] == [f"{tmp_path / 'd.json'}[{i}]" for i in (0, 1)]
    (tmp_path / "d.txt").write_text("{}\n")
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        list(read_records(tmp_path / "d.txt"))
    with pytest.raises(DataError, match="no such data file"):
        list(read_records(tmp_path / "none.jsonl"))
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON"):
        list(read_records(tmp_path / "bad.jsonl"))


def test_hf_names_are_one_syntax_for_bench_and_train(monkeypatch):
    """`hf:NAME[:SPLIT]` everywhere (train's older bare `NAME[:SPLIT]` still reads the same)."""
    calls = []

    def load_dataset(name, split):
        calls.append((name, split))
        return [{"prompt": "q", "chosen": "a", "rejected": "b", "subset": "s"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    (ex,) = load("rewardbench", "hf:org/rb:filtered")
    assert ex.source == ex.id == "hf:org/rb:filtered[0]"
    assert load_examples("hf:org/prefs")[0].source == "hf:org/prefs[0]"
    assert load_examples("org/prefs:test")[0].source == "hf:org/prefs:test[0]"
    assert calls == [("org/rb", "filtered"), ("org/prefs", "train"), ("org/prefs", "test")]


def test_metarm_label_errors_name_file_and_line(tmp_path):
    sample = Judgment(SampleSpec(0, (0, 1), 0), Status.OK, "...", (1, 2), (1, 2), "p", "c").to_dict()
    row = {"request": Request.make("q", ["a", "b"]).to_dict(), "label": {"best": 5}, **sample}
    (tmp_path / "r.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"r\.jsonl:1: bad label: best index 5"):
        read_examples(tmp_path / "r.jsonl")
