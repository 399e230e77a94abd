"""Bench harness: loaders, the Voting@k-from-one-K estimator against brute force, metrics, report."""

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from rewardscale import GRM, Judgment, Request, SampleSpec, Status
from rewardscale.bench import Kind, SchemaError, load, parse_ks, run_bench
from rewardscale.bench.estimator import voting_accuracy, voting_scores
from rewardscale.bench.metrics import bootstrap_ci, rewardbench_sections, rmb_score, roc_auc
from rewardscale.bench.runner import BenchData, evaluate, position_bias

from .fakes import FakeBackend, verdict

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "name, file, kinds, n_responses",
    [
        ("rewardbench", "rewardbench.jsonl", {Kind.PAIRWISE}, {2}),
        ("rewardbench2", "rewardbench2.jsonl", {Kind.BEST_OF_N}, {4}),
        ("ppe-preference", "ppe_preference.jsonl", {Kind.PAIRWISE}, {2}),
        ("ppe-correctness", "ppe_correctness.jsonl", {Kind.BEST_OF_N}, {4}),
        ("rmb", "rmb.jsonl", {Kind.PAIRWISE, Kind.BEST_OF_N}, {2, 3}),
        ("realmistake", "realmistake.jsonl", {Kind.BINARY}, {1}),
        ("generic", "generic.jsonl", {Kind.BEST_OF_N, Kind.PAIRWISE, Kind.BINARY}, {1, 2, 3}),
    ],
)
def test_loaders_read_each_schema(name, file, kinds, n_responses):
    examples = load(name, DATA / file)
    assert {e.kind for e in examples} == kinds
    assert {e.request.n for e in examples} == n_responses


def test_loader_labels():
    ppe = load("ppe-preference", DATA / "ppe_preference.jsonl")
    assert [e.good for e in ppe] == [(True, False), (False, True)]
    ppec = load("ppe-correctness", DATA / "ppe_correctness.jsonl")[0]
    assert ppec.good == (True, False, True, False)
    rmb = load("rmb", DATA / "rmb.jsonl")
    assert rmb[1].good == (True, False, False) and rmb[1].subset.startswith("bon/")
    assert rmb[0].request.messages[0]["content"] == "Give a tip for sleep."
    rm = load("realmistake", DATA / "realmistake.jsonl")
    assert [e.has_error for e in rm] == [False, True, False]
    gen = load("generic", DATA / "generic.jsonl")
    assert gen[0].good == (True, False, True)


def test_schema_errors_name_record_and_field(tmp_path):
    bad = tmp_path / "rb.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "x"}\n{"prompt": "p", "chosen": "a"}\n')
    with pytest.raises(SchemaError, match=r"rb\.jsonl:2: missing field 'rejected'"):
        load("rewardbench", bad)
    bad.write_text('{"prompt": "p", "response_1": "a", "response_2": "b", "winner": "tie"}\n')
    with pytest.raises(SchemaError, match="winner"):
        load("ppe-preference", bad)
    with pytest.raises(SchemaError, match="unknown benchmark"):
        load("nope", bad)
    with pytest.raises(SchemaError, match="no such data file"):
        load("rewardbench", tmp_path / "missing.jsonl")


def test_json_list_files_load(tmp_path):
    rows = [json.loads(line) for line in (DATA / "rewardbench.jsonl").read_text().splitlines()]
    (tmp_path / "rb.json").write_text(json.dumps(rows))
    assert len(load("rewardbench", tmp_path / "rb.json")) == len(rows)


# --- estimator against brute force -----------------------------------------------------------


def judgments_from(scores):
    """Judgments with the given original-order scores (None = abstained)."""
    out = []
    for i, s in enumerate(scores):
        spec = SampleSpec(index=i, permutation=tuple(range(len(scores[0] or [0, 0]))), seed=i)
        if s is None:
            out.append(Judgment(spec=spec, status=Status.NO_VERDICT, text=""))
        else:
            out.append(Judgment(spec=spec, status=Status.OK, text="", scores=tuple(s), shown_scores=tuple(s)))
    return out


def brute_force(scores, good, k):
    """Average of GRM.vote's tie-aware win probability over every k-subset (independent code path)."""
    n = len(good)
    req = Request.make("q", [str(i) for i in range(n)])
    grm = GRM(FakeBackend())
    js = judgments_from(scores)
    vals = []
    for sub in itertools.combinations(range(len(js)), k):
        r = grm.vote(req, [js[i] for i in sub], k)
        vals.append(sum(p for p, g in zip(r.win_prob, good) if g))
    return sum(vals) / len(vals)


def random_fixture(seed, K, n, abstain=0.15):
    rng = random.Random(seed)
    return [None if rng.random() < abstain else [rng.randint(4, 9) for _ in range(n)] for _ in range(K)]


@pytest.mark.parametrize("seed, K, n", [(0, 8, 2), (1, 8, 3), (2, 6, 4), (3, 10, 2), (4, 5, 2)])
def test_estimator_matches_brute_force_enumeration(seed, K, n):
    scores = random_fixture(seed, K, n)
    good = [i == 0 for i in range(n)] if n != 4 else [True, False, True, False]
    matrix = np.array([[np.nan] * n if s is None else s for s in scores], dtype=float)
    for k in range(1, K + 1):
        est = voting_accuracy(matrix, np.array(good), k, seed=seed)
        assert est.exact
        assert est.expected == pytest.approx(brute_force(scores, good, k), abs=1e-12)


def test_estimator_monte_carlo_is_close_to_exact_when_subsets_are_many():
    scores = random_fixture(7, 16, 2, abstain=0.1)
    matrix = np.array([[np.nan] * 2 if s is None else s for s in scores], dtype=float)
    exact = voting_accuracy(matrix, np.array([True, False]), 8, exact_limit=10**6)
    mc = voting_accuracy(matrix, np.array([True, False]), 8, exact_limit=100, mc_subsets=20_000, seed=1)
    assert exact.exact and not mc.exact and mc.subsets == 20_000
    assert mc.expected == pytest.approx(exact.expected, abs=0.01)


def test_seeded_tie_break_agrees_with_expectation():
    # scores that always tie: expected accuracy 1/2, seeded choice close to it and reproducible
    matrix = np.array([[5, 5]] * 12, dtype=float)
    a = voting_accuracy(matrix, np.array([True, False]), 6, seed=3)
    b = voting_accuracy(matrix, np.array([True, False]), 6, seed=3)
    assert a.expected == 0.5 and a.sampled == b.sampled and 0.4 < a.sampled < 0.6
    # no ties: the seeded choice equals the expectation
    matrix = np.array([[7, 3], [2, 6], [8, 1], [9, 9]], dtype=float)
    est = voting_accuracy(matrix, np.array([True, False]), 2)
    assert est.sampled == pytest.approx(est.expected, abs=0.2)
    assert est.expected == pytest.approx(brute_force(matrix.astype(int).tolist(), [True, False], 2))


def test_binary_voting_scores_exact_at_K():
    scores = np.array([[8, 9, np.nan], [2, 3, 4]], dtype=float)
    assert np.allclose(voting_scores(scores, 3), [[8.5, 3.0]])
    reps = voting_scores(scores, 1, replicates=50, seed=0)
    assert reps.shape == (50, 2) and set(np.unique(reps[:, 1])) <= {2.0, 3.0, 4.0}


# --- metrics ---------------------------------------------------------------------------------


def test_rewardbench_sections_weighting():
    subsets = ["math-prm"] * 4 + ["hep-python"] * 2 + ["alpacaeval-easy"] * 2
    acc = np.array([1, 1, 1, 1, 0, 0, 1, 0], dtype=float)
    s = rewardbench_sections(acc, subsets)
    assert s["Reasoning"] == 0.5  # math-prm weighted equally with the code subsets together
    assert s["Chat"] == 0.5 and s["Score"] == 0.5
    with_prior = rewardbench_sections(np.array([1.0, 0.0]), ["alpacaeval-easy", "shp"])
    assert with_prior["Score"] == pytest.approx((1.0 + 0.5 * 0.0) / 1.5)


def test_rmb_and_roc_auc():
    assert rmb_score(np.array([1.0, 0.0, 0.0]), ["pair/a", "bon/a", "bon/b"]) == 0.5
    assert roc_auc(np.array([9.0, 8.0, 2.0]), np.array([True, True, False])) == 1.0
    assert roc_auc(np.array([5.0, 5.0]), np.array([True, False])) == 0.5
    lo, hi = bootstrap_ci(lambda ix: float(np.mean(np.arange(10)[ix])), 10, resamples=200)
    assert lo < 4.5 < hi


def test_position_bias_counts_first_shown_wins():
    spec = SampleSpec(0, (1, 0), 0)
    js = [
        Judgment(spec, Status.OK, "", scores=(2, 9), shown_scores=(9, 2)),
        Judgment(spec, Status.OK, "", scores=(3, 8), shown_scores=(8, 3)),
        Judgment(spec, Status.OK, "", scores=(5, 5), shown_scores=(5, 5)),
        Judgment(spec, Status.NO_VERDICT, ""),
    ]
    pb = position_bias([js])
    assert pb["samples"] == 3 and pb["first_wins"] == pytest.approx(2 / 3)
    assert pb["chance"] == pytest.approx(1 / 3) and pb["first_over_chance"] == pytest.approx(2.0)


def test_parse_ks():
    assert parse_ks("8,1,2,4,4") == [1, 2, 4, 8]
    with pytest.raises(ValueError):
        parse_ks("0,2")
    with pytest.raises(ValueError):
        parse_ks("a")


# --- end to end with the scripted judge ------------------------------------------------------


def length_biased(shown, seed, i):
    r = random.Random(seed * 1000 + i)
    return verdict([min(10, len(s) // 3 + r.randint(0, 3)) for s in shown])


def test_bench_end_to_end_report(tmp_path):
    grm = GRM(FakeBackend(length_biased))
    res = run_bench(
        grm,
        ["rewardbench", "ppe-preference", "realmistake"],
        [str(DATA / "rewardbench.jsonl"), str(DATA / "ppe_preference.jsonl"), str(DATA / "realmistake.jsonl")],
        [1, 2, 4],
        tmp_path,
    )
    assert set(res["benchmarks"]) == {"rewardbench", "ppe-preference", "realmistake"}
    assert res["overall"]["members"] == ["rewardbench", "ppe-preference"]
    rb = res["benchmarks"]["rewardbench"]
    for k in ("1", "2", "4"):
        point = rb["curve"][k]
        assert 0 <= point["ci"][0] <= point["score"] <= point["ci"][1] <= 1
    assert "Prior Sets" in rb["sections"]["4"]
    assert res["benchmarks"]["realmistake"]["metric"] == "roc_auc"
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "results.md", "accuracy_vs_k.png", "samples.jsonl"}
    md = (tmp_path / "results.md").read_text()
    assert "| RewardBench | 5 |" in md and "Overall" in md and "first-shown wins" in md
    assert (tmp_path / "accuracy_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    # the samples file has K samples for every example
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(len(r["samples"]) == 4 for r in rows)


def test_voting_at_K_equals_the_grm_reward():
    """At k = K the estimator is the GRM's own Voting@K on the same samples."""
    grm = GRM(FakeBackend(length_biased))
    examples = load("rewardbench", DATA / "rewardbench.jsonl")
    bench = BenchData("rewardbench", examples)
    bench.judgments = grm.sample([e.request for e in examples], 4)
    res = evaluate([bench], [4])
    per_example = [grm.vote(e.request, js, 4).win_prob[0] for e, js in zip(examples, bench.judgments)]
    assert res["benchmarks"]["rewardbench"]["subsets"]["math-prm"]["4"] == per_example[0]


def test_evaluate_needs_K_samples():
    bench = BenchData("generic", load("generic", DATA / "generic.jsonl")[:2])
    bench.judgments = [[], []]
    with pytest.raises(ValueError, match="K = 2"):
        evaluate([bench], [1, 2])


def test_stored_only_reports_on_complete_examples(tmp_path):
    from rewardscale.store import SampleStore

    examples = load("rewardbench", DATA / "rewardbench.jsonl")
    store = SampleStore(tmp_path / "s.sqlite")
    GRM(FakeBackend(length_biased), store=store).sample([e.request for e in examples[:3]], 4)  # 3 of 5 done
    res = run_bench(
        GRM(FakeBackend(length_biased), store=SampleStore(tmp_path / "s.sqlite")),
        ["rewardbench"],
        [str(DATA / "rewardbench.jsonl")],
        [1, 4],
        tmp_path / "out",
        stored_only=True,
    )
    assert res["partial"] == {"examples_complete": 3, "examples_total": 5}
    assert res["benchmarks"]["rewardbench"]["n_examples"] == 3
    assert "Partial report" in (tmp_path / "out" / "results.md").read_text()


def test_expected_scores_get_their_own_curve_from_the_same_samples(tmp_path):
    """Samples that carry expected scores (--score-mode expected) give Voting@k over them beside
    the integer Voting@k: here the integers always tie and the expectations favour the good one."""
    from rewardscale.bench.report import markdown

    examples = load("generic", DATA / "generic.jsonl")[:2]  # ranking records (the third is binary)
    bench = BenchData("generic", examples)
    bench.judgments = []
    for e in examples:
        n = e.request.n
        good = [6.5 if g else 4.5 for g in e.good]
        bench.judgments.append(
            [
                Judgment(SampleSpec(s, tuple(range(n)), s), Status.OK, "", scores=(5,) * n, expected=tuple(good))
                for s in range(2)
            ]
        )
    res = evaluate([bench], [1, 2])["benchmarks"]["generic"]
    assert res["curve_expected"]["2"]["score"] == 1.0
    assert res["curve"]["2"]["score"] < 1.0  # integer ties: 1/#tied
    assert "Integer vs expected scores" in markdown({"ks": [1, 2], "K": 2, "benchmarks": {"generic": res}})
    for js in bench.judgments:  # without expected scores there is no such curve
        js[:] = [Judgment(j.spec, j.status, "", scores=j.scores) for j in js]
    assert "curve_expected" not in evaluate([bench], [1, 2])["benchmarks"]["generic"]
