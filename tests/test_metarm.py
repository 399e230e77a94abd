"""Meta RM: training rows and labels, MetaRM@k selection and vote, the MetaRM@k estimator against
brute force, training MiniLM for a few steps, loading and scoring, the CLI."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardscale.bench.estimator import metarm_accuracy, metarm_scores, voting_accuracy, voting_scores
from rewardscale.correctness import Label
from rewardscale.grm import GRM, resolve_k_meta
from rewardscale.metarm.data import (
    MetaRMDataError,
    _budgets,
    format_sample,
    read_rows,
    renumber,
    sample_correct,
)
from rewardscale.metarm.model import MARKER, NotAMetaRM, read_marker, write_marker
from rewardscale.types import Judgment, Request, Reward, SampleSpec, Status
from rewardscale.vote import meta_order, metarm_totals, select_top

from .fakes import FakeBackend, verdict

runner = CliRunner()


def judgment(index: int, scores, q=None, perm=None, status=Status.OK, critique="Response 1 is better.") -> Judgment:
    n = len(scores) if scores is not None else 2
    perm = tuple(perm) if perm is not None else tuple(range(n))
    return Judgment(
        spec=SampleSpec(index=index, permutation=perm, seed=index),
        status=status,
        text="...",
        scores=None if scores is None else tuple(scores),
        shown_scores=None if scores is None else tuple(scores[p] for p in perm),
        principles="Accuracy (60%), clarity (40%).",
        critique=critique,
        q=q,
    )


# ------------------------------------------------------------------------------------ labels


def test_label_rule_strict_leader_ties_wrong_unparsed_wrong():
    good = [False, True, False]
    assert sample_correct((3, 8, 5), good=good)
    assert not sample_correct((8, 8, 5), good=good)  # tie for first: wrong
    assert not sample_correct((9, 8, 5), good=good)
    assert not sample_correct(None, good=good)
    assert sample_correct((9, 2, 9), good=[True, False, True]) is False  # two good tied: still a tie
    assert sample_correct((9, 2, 8), good=[True, False, True])  # several acceptable picks
    assert sample_correct((7,), label=Label(rating=7)) and not sample_correct((6,), label=Label(rating=7))
    assert sample_correct((8,), label=Label(good=True)) and not sample_correct((3,), label=Label(good=True))


def test_format_keeps_scores_line_first_maps_order_and_truncates():
    req = Request.make("Q " * 2000, ["short answer", "long " * 3000])
    # the judge saw [1, 0]: shown "Response 1" is original response 2
    j = judgment(0, (3, 9), perm=(1, 0), critique="Response 1 is detailed; Response 2 is short. " * 200)
    text = format_sample(req, j, budget_chars=1200)
    first = text.splitlines()[0]
    assert first == "scores: [1]=3 [2]=9 | top: 2"
    assert "[1] short answer" in text and "[2] long" in text
    assert "critique: Response 2 is detailed; Response 1 is short." in text
    assert len(text) < 1400 and "[...]" in text
    assert (
        renumber("response 2 beats Response 1, Response 7 n/a", (1, 0)) == "response 1 beats Response 2, Response 7 n/a"
    )
    tie = format_sample(req, judgment(1, (9, 9)), 800).splitlines()[0]
    assert tie.endswith("top: tie 1,2")


def test_budgets_share_out_what_short_parts_leave():
    assert _budgets([10, 1000, 0, 1000], [0.25, 0.25, 0.25, 0.25], 1000) == [10, 495, 0, 495]
    assert sum(_budgets([5000, 5000], [0.5, 0.5], 100)) <= 100


def bench_row(i, good, samples, has_error=None, n=2):
    responses = [f"answer {i}.{r}" for r in range(n)]
    return {
        "benchmark": "generic",
        "id": f"ex{i}",
        "subset": "s",
        "good": good,
        "has_error": has_error,
        "request": Request.make(f"question {i}?", responses).to_dict(),
        "samples": [s.to_dict() for s in samples],
    }


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_read_rows_labels_excludes_unparsed_and_rft_hinted(tmp_path):
    rows = [
        bench_row(
            0, [True, False], [judgment(0, (9, 2)), judgment(1, (5, 5)), judgment(2, None, status=Status.NO_VERDICT)]
        ),
        bench_row(1, [], [judgment(0, (8,)), judgment(1, (2,))], has_error=False, n=1),  # binary: good response
    ]
    bench = write_jsonl(tmp_path / "samples.jsonl", rows)
    req = Request.make("q?", ["a", "b"]).to_dict()
    rft = [
        {"source": "d.jsonl:1", "request": req, "label": {"best": 1}, "hinted": False, **judgment(0, (2, 7)).to_dict()},
        {"source": "d.jsonl:1", "request": req, "label": {"best": 1}, "hinted": True, **judgment(1, (2, 7)).to_dict()},
    ]
    trail = write_jsonl(tmp_path / "rft_samples.jsonl", rft)
    got, stats = read_rows([bench, trail])
    assert [r.label for r in got] == [1, 0, 1, 0, 1]
    assert stats.unparsed == 1 and stats.hinted == 1 and stats.kept == 5 and stats.examples == 3
    assert {r.group for r in got} == {"generic:ex0", "generic:ex1", "rft_samples:d.jsonl:1"}
    assert all(r.text.startswith("scores: ") for r in got)


def test_read_rows_clear_errors(tmp_path):
    nothing = write_jsonl(
        tmp_path / "a.jsonl", [bench_row(0, [True, False], [judgment(0, None, status=Status.TRUNCATED)])]
    )
    with pytest.raises(MetaRMDataError, match="no labelled sample that parsed"):
        read_rows(nothing)
    old = bench_row(0, [True, False], [judgment(0, (9, 1))])
    del old["request"]
    with pytest.raises(MetaRMDataError, match=r"old\.jsonl:1: no 'request'.*--stored-only"):
        read_rows(write_jsonl(tmp_path / "old.jsonl", [old]))
    with pytest.raises(MetaRMDataError, match="cannot read"):
        read_rows(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------------- MetaRM@k selection


def test_select_top_by_q_ties_by_position_invalid_last():
    js = [
        judgment(0, (9, 1), q=0.2),
        judgment(1, (1, 9), q=0.9),
        judgment(2, (1, 9), q=0.9),
        judgment(3, (9, 1), q=0.5),
    ]
    assert meta_order([j.q for j in js], [True] * 4) == [1, 2, 3, 0]
    assert select_top(js, [j.q for j in js], 2) == [1, 2]
    rewards, kept = metarm_totals(js, [j.q for j in js], 2, 2)
    assert kept == [1, 2] and rewards == [2.0, 18.0]
    bad = judgment(4, None, q=0.99, status=Status.NO_VERDICT)
    assert select_top([*js, bad], [*(j.q for j in js), 0.99], 1) == [1]  # an abstaining sample never goes first
    assert select_top(js, [j.q for j in js], len(js) + 1) == list(range(len(js)))  # capped at k: all vote
    with pytest.raises(ValueError, match=">= 1"):
        select_top(js, [j.q for j in js], 0)


class FixedQ:
    """A stand-in meta RM: q from a function of the sample's scores (no torch)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def score_samples(self, requests, judgments):
        self.calls += 1
        return [[self.fn(j) if j.valid else None for j in js] for js in judgments]


def test_grm_score_metarm_votes_with_top_samples_and_round_trips():
    # the judge is right (response 0 best) only on completion 0 of each prompt; the meta RM trusts those
    backend = FakeBackend(lambda shown, seed, i: verdict([9 if (s == "right") == (i == 0) else 2 for s in shown]))
    grm = GRM(backend, max_retries=0)
    meta = FixedQ(lambda j: 0.9 if j.scores[0] > j.scores[1] else 0.1)
    plain = grm.score("q", ["right", "wrong"], k=4)
    r = grm.score("q", ["right", "wrong"], k=4, meta_rm=meta)
    assert r.method == "metarm" and r.k_meta == 2 and len(r.selected) == 2
    assert all(r.samples[i].q == 0.9 for i in r.selected)
    assert r.best == 0 and r.rewards[0] > r.rewards[1]
    assert plain.method == "voting" and plain.k_meta is None
    back = Reward.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.k_meta == 2 and back.selected == r.selected and [j.q for j in back.samples] == [j.q for j in r.samples]
    assert back.mean_scores == r.mean_scores
    capped = grm.score("q", ["right", "wrong"], k=4, meta_rm=meta, k_meta=5)  # above k: every sample votes
    assert capped.k_meta == 4 and capped.selected == [0, 1, 2, 3] and capped.rewards == plain.rewards
    with pytest.raises(ValueError, match="k_meta must be >= 1"):
        grm.score("q", ["a", "b"], k=4, meta_rm=meta, k_meta=0)
    with pytest.raises(ValueError, match="needs a meta RM"):
        grm.score("q", ["a", "b"], k=4, k_meta=2)
    assert resolve_k_meta(1, None, meta) == 1 and resolve_k_meta(8, None, meta) == 4


# ------------------------------------------------------------------ estimator vs brute force


def brute_force(scores, q, good, k, k_meta):
    accs = []
    for sub in combinations(range(len(scores)), k):
        js = [judgment(i, None if np.isnan(scores[i]).any() else tuple(scores[i]), q=q[i]) for i in sub]
        js = [j if j.scores is not None else Judgment(j.spec, Status.NO_VERDICT, "") for j in js]
        rewards, _ = metarm_totals(js, [None if np.isnan(q[i]) else q[i] for i in sub], len(good), k_meta)
        if not any(js[i].valid for i in select_top(js, [None if np.isnan(q[s]) else q[s] for s in sub], k_meta)):
            rewards = [0.0] * len(good)
        top = max(rewards)
        lead = [i for i, r in enumerate(rewards) if r == top]
        accs.append(sum(good[i] for i in lead) / len(lead))
    return float(np.mean(accs))


def test_metarm_estimator_matches_brute_force():
    rng = np.random.default_rng(3)
    for trial in range(6):
        K, n = 6, 3
        scores = rng.integers(1, 11, size=(K, n)).astype(float)
        scores[rng.random(K) < 0.2] = np.nan  # some abstain
        q = rng.choice([0.1, 0.5, 0.5, 0.8], size=K)  # ties in q on purpose
        q[np.isnan(scores).any(axis=1)] = np.nan
        good = np.array([True, False, trial % 2 == 0])
        for k in range(1, K + 1):
            for km in {1, max(1, k // 2), k}:
                est = metarm_accuracy(scores, q, good, k, km, seed=trial)
                assert est.exact and est.expected == pytest.approx(brute_force(scores, q, good, k, km))
    # k_meta = k is plain Voting@k
    assert metarm_accuracy(scores, q, good, 4, 4).expected == pytest.approx(voting_accuracy(scores, good, 4).expected)
    capped = metarm_accuracy(scores, q, good, 2, 3).expected  # above k: capped, as everywhere
    assert capped == pytest.approx(metarm_accuracy(scores, q, good, 2, 2).expected)


def test_metarm_binary_scores_keep_top_q():
    scores = np.array([[9.0, 1.0, 1.0, 1.0], [2.0, 8.0, 8.0, 8.0]])
    q = np.array([[0.9, 0.1, 0.1, 0.1], [0.9, 0.1, 0.2, 0.3]])
    got = metarm_scores(scores, q, 4, 1)
    assert got.shape == (1, 2) and got.tolist() == [[9.0, 2.0]]
    assert np.allclose(metarm_scores(scores, q, 4, 4), voting_scores(scores, 4))


# ----------------------------------------------------------------------- model dir errors


def test_wrong_kind_of_directory_gives_clear_error(tmp_path):
    with pytest.raises(NotAMetaRM, match="no such directory"):
        read_marker(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(NotAMetaRM, match="not a rewardscale meta RM.*transformers model"):
        read_marker(tmp_path)
    (tmp_path / MARKER).write_text('{"kind": "something-else"}')
    with pytest.raises(NotAMetaRM, match="kind"):
        read_marker(tmp_path)
    write_marker(tmp_path, max_length=64)
    assert read_marker(tmp_path)["max_length"] == 64


# ------------------------------------------------------------------------- training (MiniLM)


def synthetic_samples(path, examples=12, K=4):
    """Pairs where 'right' is good; a sample is correct when its critique says so (learnable)."""
    rows = []
    for i in range(examples):
        samples = []
        for s in range(K):
            ok = (i + s) % 3 != 0
            scores = (8, 3) if ok else (3, 8)
            crit = "Response 1 is accurate and complete." if ok else "Response 2 looks better to me somehow."
            samples.append(judgment(s, scores, critique=crit))
        rows.append(bench_row(i, [True, False], samples))
    return write_jsonl(path, rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("torch")
    import torch

    from rewardscale.metarm.data import read_rows as rr
    from rewardscale.metarm.options import MetaRMOptions
    from rewardscale.metarm.train import train_metarm

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("metarm")
    rows, stats = rr(synthetic_samples(tmp / "samples.jsonl"), budget_chars=400)
    opts = MetaRMOptions(epochs=1, batch_size=8, max_length=96, budget_chars=400, progress=False, threads=1)
    result = train_metarm(rows, tmp / "model", opts, data_stats=stats.to_dict())
    return tmp, result


def test_train_save_load_score(trained):
    from rewardscale.metarm import MetaRM

    tmp, result = trained
    out = tmp / "model"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file() and (out / MARKER).is_file()
    assert not (out / "checkpoints").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    val = metrics["validation"]
    assert val["n"] > 0 and 0 <= val["brier"] <= 1 and 0 <= val["ece"] <= 1 and "auc" in val
    assert metrics["split"]["validation_examples"] >= 1 and metrics["pos_weight"] > 0
    m = MetaRM.load(out, device="cpu")
    assert m.max_length == 96 and m.budget_chars == 400
    req = Request.make("question?", ["right", "wrong"])
    js = [judgment(0, (8, 3)), judgment(1, (3, 8)), judgment(2, None, status=Status.NO_VERDICT)]
    q = m.score([(req, j) for j in js])
    assert q[2] is None and all(0.0 <= x <= 1.0 for x in q[:2])
    assert m.score_samples([req], [js]) == [q]
    r = GRM(FakeBackend(), max_retries=0).score("q", ["a long answer", "b"], k=4, meta_rm=m)
    assert r.method == "metarm" and all(j.q is not None and 0 <= j.q <= 1 for j in r.samples)


def test_one_class_training_data_is_refused(tmp_path):
    pytest.importorskip("torch")
    from rewardscale.metarm.options import MetaRMOptions
    from rewardscale.metarm.train import train_metarm

    rows, _ = read_rows(
        write_jsonl(tmp_path / "s.jsonl", [bench_row(i, [True, False], [judgment(0, (9, 1))]) for i in range(3)])
    )
    with pytest.raises(MetaRMDataError, match="every one of the .* training samples is correct"):
        train_metarm(rows, tmp_path / "m", MetaRMOptions(val_fraction=0))


# ------------------------------------------------------------------------------------- CLI


def test_cli_train_metarm_reports_data_errors(tmp_path):
    from rewardscale.cli import app

    bad = write_jsonl(
        tmp_path / "bad.jsonl", [bench_row(0, [True, False], [judgment(0, None, status=Status.TRUNCATED)])]
    )
    res = runner.invoke(app, ["train", "metarm", "--samples", str(bad), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "no labelled sample that parsed" in res.output


def test_cli_train_metarm_and_score_with_it(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import rewardscale.cli as cli
    import rewardscale.config as config
    import rewardscale.models as models

    samples = synthetic_samples(tmp_path / "samples.jsonl", examples=6, K=2)
    out = tmp_path / "meta"
    args = ["train", "metarm", "--samples", str(samples), "--out", str(out), "--max-steps", "2"]
    res = runner.invoke(cli.app, [*args, "--max-length", "64", "--batch-size", "4", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "validation AUC" in res.output and (out / "metrics.json").is_file()

    monkeypatch.setattr(config, "make_backend", lambda name, **kw: FakeBackend())
    monkeypatch.setattr(models, "is_assembled", lambda name: True)
    base = ["score", "-q", "which?", "-r", "a long answer", "-r", "b", "-k", "4", "--no-store", "-m", models.BASE_MODEL]
    res = runner.invoke(cli.app, [*base, "--meta-rm", str(out), "--json", "--show-samples"])
    assert res.exit_code == 0, res.output
    reward = json.loads(res.stdout)
    assert reward["method"] == "metarm" and reward["k_meta"] == 2 and len(reward["selected"]) == 2
    assert all(0 <= s["q"] <= 1 for s in reward["samples"])
    res = runner.invoke(cli.app, [*base, "--meta-rm", str(out), "--k-meta", "5", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["k_meta"] == 4  # above -k: capped at k
    res = runner.invoke(cli.app, [*base, "--meta-rm", str(out), "--k-meta", "0"])
    assert res.exit_code == 2 and "--k-meta" in res.output
    res = runner.invoke(cli.app, [*base, "--meta-rm", str(tmp_path)])
    assert res.exit_code == 2 and "not a rewardscale meta RM" in res.output
    res = runner.invoke(cli.app, [*base, "--k-meta", "2"])
    assert res.exit_code == 2 and "needs --meta-rm" in res.output
    reqs = write_jsonl(
        tmp_path / "req.jsonl", [{"query": f"q{i}", "responses": ["long answer", "b"]} for i in range(2)]
    )
    res = runner.invoke(
        cli.app,
        [
            "score",
            str(reqs),
            "-o",
            str(tmp_path / "r.jsonl"),
            "-k",
            "2",
            "--meta-rm",
            str(out),
            "-m",
            models.BASE_MODEL,
        ],
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["metarm", "metarm"] and all(r["k_meta"] == 1 for r in rows)


def test_bench_reports_metarm_curves(tmp_path):
    from rewardscale.bench import run_bench

    data = tmp_path / "generic.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"e{i}", "prompt": f"q{i}", "chosen": "a long answer " * (i % 3 + 1), "rejected": "no"})
            + "\n"
            for i in range(6)
        )
    )
    meta = FixedQ(lambda j: 0.8 if j.scores[0] != j.scores[1] else 0.2)
    results = run_bench(
        GRM(FakeBackend(), max_retries=0),
        ["generic"],
        [str(data)],
        [1, 2, 4],
        tmp_path / "out",
        meta_rm=meta,
        with_plot=True,
    )
    curve = results["benchmarks"]["generic"]["curve_metarm"]
    assert set(curve) == {"1", "2", "4"} and curve["4"]["k_meta"] == 2 and len(curve["2"]["diff_ci"]) == 2
    assert results["metarm"]["samples_scored"] > 0
    md = (tmp_path / "out" / "results.md").read_text()
    assert "MetaRM@4" in md and "Δ@4" in md
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["request"]["responses"] and all("q" in s for s in rows[0]["samples"])
    assert (tmp_path / "out" / "accuracy_vs_k.png").is_file()
    again, _ = read_rows(tmp_path / "out" / "samples.jsonl")  # bench output is meta RM training data
    assert again


def test_bench_metarm_on_binary_examples(tmp_path):
    from rewardscale.bench import run_bench

    data = tmp_path / "binary.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"b{i}", "prompt": f"q{i}", "response": "x" * (2 + i), "has_error": i % 2 == 0}) + "\n"
            for i in range(6)
        )
    )
    meta = FixedQ(lambda j: j.scores[0] / 10)
    results = run_bench(
        GRM(FakeBackend(), max_retries=0), ["generic"], [str(data)], [1, 2], tmp_path / "o", meta_rm=meta, k_meta=1
    )
    b = results["benchmarks"]["generic"]
    assert b["metric"] == "roc_auc" and b["curve_metarm"]["2"]["k_meta"] == 1
    assert 0 <= b["curve_metarm"]["2"]["score"] <= 1


# ------------------------------------------------------------- held-out measurement script


def load_heldout_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "metarm" / "heldout.py"
    spec = importlib.util.spec_from_file_location("metarm_heldout", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_heldout_cross_fitting_never_scores_an_example_with_a_model_that_saw_it(tmp_path):
    from rewardscale.metarm.data import read_examples
    from rewardscale.store import SampleStore

    h = load_heldout_script()
    examples = read_examples(synthetic_samples(tmp_path / "s.jsonl", examples=10, K=4))
    folds = h.make_folds([e.group for e in examples], 5, seed=1)
    assert sorted(g for f in folds for g in f) == sorted(e.group for e in examples)
    seen = []

    def train_and_load(f, train):
        seen.append({e.group for e in train})
        return FixedQ(lambda j: 0.9 if j.scores[0] > j.scores[1] else 0.1), {"train_samples": len(train)}

    q, info, seconds, scored = h.cross_fit(examples, folds, train_and_load)
    assert all(not (seen[f] & set(folds[f])) for f in range(5)) and scored == 40 and len(info) == 5
    auc = h.pooled_auc(examples, q, resamples=50, seed=0)
    assert auc["auc"] == 1.0 and auc["samples"] == 40
    c = h.curves(examples, q, [2, 3, 4, 8], None, resamples=50, seed=0)
    assert c["ks"] == [2, 3, 4] and c["by_k"]["4"]["k_meta"] == 2
    assert c["by_k"]["4"]["metarm"] == 1.0 and c["by_k"]["4"]["metarm"] >= c["by_k"]["4"]["voting"]
    SampleStore(tmp_path / "st.sqlite").close()  # an empty store: no timing, no crash
    assert h.grm_seconds_from_store([tmp_path / "st.sqlite"])["seconds_per_sample"] is None
    res = {
        "inputs": ["s.jsonl"], "folds": 5, "settings": {"model": "m", "max_length": 64, "epochs": 1},
        "data": {"examples": 10, "kept": 40, "positive": 27}, "auc": auc, "curves": c,
        "cost": {"metarm_seconds_per_sample": 0.01, "samples_scored": 40, "threads": 1,
                 "grm_seconds_per_sample": 2.0, "grm_source": "x", "fraction": 0.005},
        "fold_info": info,
    }  # fmt: skip
    md = h.markdown(res)
    assert "Held-out AUC" in md and "| 4 | 2 |" in md and "0.50%" in md


def test_missing_encoder_package_names_the_extra(monkeypatch):
    import importlib.util

    from rewardscale.metarm.model import MissingMetaRMExtra, default_encoder

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "minilm" in name else real(name, *a))
    with pytest.raises(MissingMetaRMExtra, match=r"rewardscale\[metarm\]"):
        default_encoder()
