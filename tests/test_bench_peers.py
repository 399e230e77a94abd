"""RM-Bench and JudgeBench in the bench harness: loaders on the project's fixtures, their scoring
rules against hand-computed results, and the figures every report gains (position consistency,
chance level, strict scores, per-subset curves)."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardscale import GRM, Judgment, SampleSpec, Status
from rewardscale.bench import Kind, SchemaError, load, run_bench
from rewardscale.bench.estimator import metarm_accuracy, voting_accuracy
from rewardscale.bench.loaders import judgebench_category, rm_bench_level
from rewardscale.bench.metrics import rm_bench_group, rm_bench_sections, style_levels, style_matrix
from rewardscale.bench.report import show_subsets
from rewardscale.bench.runner import BenchData, chance_score, evaluate, position_consistency

from .fakes import FakeBackend, verdict

DATA = Path(__file__).parent / "data"


def sample(index: int, perm: tuple[int, ...], scores: tuple[int, ...] | None) -> Judgment:
    """A judgment that showed `perm` and gave `scores` (original order); None = abstained."""
    spec = SampleSpec(index=index, permutation=perm, seed=index)
    if scores is None:
        return Judgment(spec, Status.NO_VERDICT, "")
    shown = tuple(scores[p] for p in perm)
    return Judgment(spec, Status.OK, "", scores=tuple(scores), shown_scores=shown)


# --- loaders ---------------------------------------------------------------------------------


def test_rm_bench_loader_gives_the_nine_style_pairs_of_each_record():
    examples = load("rm-bench", DATA / "rm_bench.json")
    assert len(examples) == 4 * 9
    assert {e.kind for e in examples} == {Kind.PAIRWISE}
    assert all(e.good == (True, False) for e in examples)  # chosen is response 0
    first = examples[:9]
    assert [e.style for e in first] == list(itertools.product(range(3), range(3)))
    assert [e.subset for e in first[:4]] == ["chat/normal", "chat/hard", "chat/hard", "chat/easy"]
    # chosen style i against rejected style j, from the record's own lists
    rec = json.loads((DATA / "rm_bench.json").read_text())[0]
    c1r2 = first[5]
    assert c1r2.id == "fixture-chat-1/c1r2" and c1r2.request.responses == (rec["chosen"][1], rec["rejected"][2])
    assert {e.subset.split("/")[0] for e in examples} == {"chat", "math", "code", "safety-response"}
    assert len(load("rm-bench", DATA / "rm_bench.json", limit=2)) == 18  # the limit counts records


def test_rm_bench_levels_follow_rm_bench_convention():
    # rows: chosen style, columns: rejected style (0 concise, 1 detailed, 2 detailed markdown)
    assert [[rm_bench_level(i, j) for j in range(3)] for i in range(3)] == [
        ["normal", "hard", "hard"],
        ["easy", "normal", "hard"],
        ["easy", "easy", "normal"],
    ]
    assert [rm_bench_group(d) for d in ("chat", "safety-refuse", "safety-response", "math", "mine")] == [
        "Chat",
        "Safety",
        "Safety",
        "Math",
        "mine",
    ]


def test_judgebench_loader_reads_labels_and_categories():
    examples = load("judgebench", DATA / "judgebench.jsonl")
    assert len(examples) == 6 and {e.kind for e in examples} == {Kind.BOTH_ORDERS}
    labels = [json.loads(line)["label"] for line in (DATA / "judgebench.jsonl").read_text().splitlines()]
    assert [e.good for e in examples] == [(lab == "A>B", lab == "B>A") for lab in labels]
    assert [e.subset for e in examples] == ["knowledge", "knowledge", "reasoning", "math", "math", "coding"]
    assert examples[0].id == "fixture-jb-0001"
    assert examples[0].request.query.startswith("A ball is dropped")
    assert judgebench_category("mmlu-pro-computer science") == "knowledge"
    assert judgebench_category("my-own-pairs") == "my-own-pairs"


@pytest.mark.parametrize(
    "name, file, text, match",
    [
        (
            "rm-bench",
            "rm.json",
            '[{"id": 1, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"], "domain": "chat"},'
            ' {"id": 2, "prompt": "p", "chosen": ["a", "b"], "rejected": ["d", "e", "f"], "domain": "chat"}]',
            r"rm\.json\[1\]: field 'chosen' must be a list of 3 strings",
        ),
        (
            "rm-bench",
            "rm.json",
            '[{"id": 1, "prompt": "p", "chosen": ["a", 7, "c"], "rejected": ["d", "e", "f"], "domain": "chat"}]',
            r"rm\.json\[0\]: field 'chosen\[1\]' must be a string",
        ),
        (
            "rm-bench",
            "rm.json",
            '[{"id": 1, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}]',
            r"rm\.json\[0\]: missing field 'domain'",
        ),
        (
            "judgebench",
            "jb.jsonl",
            '{"pair_id": "1", "source": "livebench-math", "question": "q", "response_A": "a", "response_B": "b",'
            ' "label": "A>B"}\n'
            '{"pair_id": "2", "source": "livebench-math", "question": "q", "response_A": "a", "response_B": "b",'
            ' "label": "A=B"}\n',
            r"jb\.jsonl:2: field 'label' must be 'A>B' or 'B>A'",
        ),
        (
            "judgebench",
            "jb.jsonl",
            '{"pair_id": "1", "source": "livebench-math", "question": "q", "response_A": "a", "label": "A>B"}\n',
            r"jb\.jsonl:1: missing field 'response_B'",
        ),
    ],
)
def test_malformed_records_name_file_record_and_field(tmp_path, name, file, text, match):
    (tmp_path / file).write_text(text)
    with pytest.raises(SchemaError, match=match):
        load(name, tmp_path / file)


# --- RM-Bench scoring ------------------------------------------------------------------------

# per-pair accuracies of two chat records and one safety-refuse record, cell [i][j] = chosen
# style i against rejected style j
CHAT_A = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.5]]
CHAT_B = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
SAFETY = [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]


def flatten(*records):
    """(acc, subsets, styles) of RM-Bench pairs from per-record 3x3 accuracies and domains."""
    acc, subsets, styles = [], [], []
    for domain, m in records:
        for i, j in itertools.product(range(3), range(3)):
            acc.append(m[i][j])
            subsets.append(f"{domain}/{rm_bench_level(i, j)}")
            styles.append((i, j))
    return np.array(acc), subsets, styles


def test_rm_bench_matrix_and_levels_by_hand():
    acc, subsets, styles = flatten(("chat", CHAT_A), ("chat", CHAT_B))
    m = style_matrix(acc, styles)
    # the chat matrix is the cell-wise mean of the two records
    assert m.tolist() == [[0.5, 0.0, 0.5], [1.0, 0.5, 0.0], [1.0, 1.0, 0.75]]
    levels = style_levels(m)
    assert levels["easy"] == pytest.approx((1.0 + 1.0 + 1.0) / 3)  # lower-left: chosen fancier
    assert levels["normal"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert levels["hard"] == pytest.approx((0.0 + 0.5 + 0.0) / 3)  # upper-right: chosen plainer
    # the section scores read the same levels from the subsets
    s = rm_bench_sections(acc, subsets)
    assert s["Easy"] == pytest.approx(levels["easy"]) and s["Hard"] == pytest.approx(levels["hard"])
    assert s["Chat"] == pytest.approx(np.mean(list(levels.values())))


def test_rm_bench_sections_average_domain_groups():
    acc, subsets, _ = flatten(("chat", CHAT_A), ("chat", CHAT_B), ("safety-refuse", SAFETY))
    s = rm_bench_sections(acc, subsets)
    chat = {"easy": 1.0, "normal": 1.75 / 3, "hard": 0.5 / 3}
    safety = {"easy": 2 / 3, "normal": 1.0, "hard": 1.0}
    assert s["Chat"] == pytest.approx(np.mean(list(chat.values())))
    assert s["Safety"] == pytest.approx(np.mean(list(safety.values())))
    for level in ("easy", "normal", "hard"):  # the mean over groups, not over pairs
        assert s[level.capitalize()] == pytest.approx((chat[level] + safety[level]) / 2)
    assert s["Score"] == pytest.approx((s["Chat"] + s["Safety"]) / 2)


def test_rm_bench_evaluate_reports_sections_and_matrix():
    """The harness on RM-Bench pairs with one sample each: Voting@1 per pair is 1, 0 or 1/2."""
    examples = load("rm-bench", DATA / "rm_bench.json", limit=1)  # the chat record
    cells = {(0, 0): (8, 3), (0, 1): (3, 8), (0, 2): (4, 9), (1, 1): (7, 7), (2, 1): (9, 2)}
    bench = BenchData("rm-bench", examples)
    bench.judgments = [[sample(0, (0, 1), cells.get(e.style, (9, 1)))] for e in examples]
    res = evaluate([bench], [1], resamples=50)["benchmarks"]["rm-bench"]
    m = res["style_matrix"]["1"]["Chat"]
    assert m == [[1.0, 0.0, 0.0], [1.0, 0.5, 1.0], [1.0, 1.0, 1.0]]
    assert res["sections"]["1"]["Hard"] == pytest.approx(1 / 3)
    assert res["sections"]["1"]["Normal"] == pytest.approx(2.5 / 3)
    assert res["sections"]["1"]["Easy"] == 1.0
    assert res["curve"]["1"]["score"] == pytest.approx(res["sections"]["1"]["Score"])
    assert res["curve"]["1"]["score_strict"] == pytest.approx((1 + 1 / 3 + 2 / 3) / 3)  # the tie is wrong
    assert res["chance"] == 0.5


# --- JudgeBench scoring ----------------------------------------------------------------------

AB, BA = (0, 1), (1, 0)


def estimate(js, good, k, **kw):
    scores = np.array([[np.nan, np.nan] if j.scores is None else j.scores for j in js], dtype=float)
    first = np.array([j.spec.permutation[0] for j in js])
    return voting_accuracy(scores, np.array(good), k, first=first, **kw)


@pytest.mark.parametrize(
    "in_ab, in_ba, expected, strict",
    [
        ((9, 2), (8, 3), 1.0, 1.0),  # both orders prefer A
        ((9, 2), (3, 8), 0.5, 0.0),  # each order prefers the response shown first: a tie
        ((9, 2), (5, 5), 1.0, 1.0),  # one order prefers A, the other ties
        ((2, 9), (3, 8), 0.0, 0.0),  # both prefer B
        ((5, 5), (6, 6), 0.5, 0.0),  # both tie
        ((9, 2), None, 1.0, 1.0),  # the second order abstained: the first decides
    ],
)
def test_judgebench_pair_decided_in_both_orders(in_ab, in_ba, expected, strict):
    js = [sample(0, AB, in_ab), sample(1, BA, in_ba)]
    est = estimate(js, (True, False), 2)
    assert (est.expected, est.strict) == (pytest.approx(expected), pytest.approx(strict))


def test_judgebench_rule_differs_from_summing_scores():
    # A wins its order by 7 points, B wins the other by 2: summed scores pick A, JudgeBench ties
    js = [sample(0, AB, (9, 2)), sample(1, BA, (4, 6))]
    scores = np.array([j.scores for j in js], dtype=float)
    assert voting_accuracy(scores, np.array([True, False]), 2).expected == 1.0
    tie = estimate(js, (True, False), 2, seed=1)
    assert tie.expected == 0.5 and tie.strict == 0.0 and tie.sampled in (0.0, 1.0)
    # with k = 1 each sample decides alone, as for any pairwise benchmark
    assert estimate(js, (True, False), 1).expected == 0.5


def judgebench_reference(js, label, subset):
    """JudgeBench's own per-pair rule, written from its metrics code: one decision per shown
    order (here the vote of that order's samples), the second flipped back, +1 for each decision
    equal to the label, -1 for each equal to the flipped label."""
    flip = {"A>B": "B>A", "B>A": "A>B"}
    decisions = []
    for perm in (AB, BA):
        diffs = [js[i].scores[0] - js[i].scores[1] for i in subset if js[i].spec.permutation == perm and js[i].valid]
        total = sum(diffs)
        decisions.append(None if not diffs else "A>B" if total > 0 else "B>A" if total < 0 else "A=B")
    counter = sum(1 if d == label else -1 if d == flip[label] else 0 for d in decisions)
    return 1.0 if counter > 0 else 0.5 if counter == 0 else 0.0, 1.0 if counter > 0 else 0.0


@pytest.mark.parametrize("seed", range(6))
def test_judgebench_estimate_matches_the_reference_rule_on_every_subset(seed):
    rng = random.Random(seed)
    K = 6
    perms = [AB, BA] * (K // 2)
    js = [
        sample(i, perms[i], None if rng.random() < 0.15 else (rng.randint(3, 9), rng.randint(3, 9))) for i in range(K)
    ]
    label = rng.choice(["A>B", "B>A"])
    good = (label == "A>B", label == "B>A")
    for k in range(1, K + 1):
        ref = [judgebench_reference(js, label, sub) for sub in itertools.combinations(range(K), k)]
        est = estimate(js, good, k)
        assert est.exact
        assert est.expected == pytest.approx(np.mean([r[0] for r in ref]), abs=1e-12)
        assert est.strict == pytest.approx(np.mean([r[1] for r in ref]), abs=1e-12)


def test_metarm_keeps_the_two_order_rule():
    js = [sample(0, AB, (9, 2)), sample(1, BA, (4, 6)), sample(2, AB, (8, 3))]
    scores = np.array([j.scores for j in js], dtype=float)
    first = np.array([0, 1, 0])
    q = np.array([0.9, 0.8, 0.1])  # k = 3, k_meta = 2 keeps samples 0 and 1: one decision each way
    est = metarm_accuracy(scores, q, np.array([True, False]), 3, 2, first=first)
    assert est.expected == 0.5 and est.strict == 0.0


# --- figures in every report -----------------------------------------------------------------


def test_position_consistency_by_hand():
    js = [
        sample(0, AB, (9, 2)),  # A best
        sample(1, BA, (8, 3)),  # A best: consistent with sample 0
        sample(2, AB, (5, 5)),  # tie
        sample(3, BA, (2, 9)),  # B best
        sample(4, BA, None),  # abstained: not counted
    ]
    pc = position_consistency([js])
    # cross-order pairs: (0,1) same, (0,3) differ, (2,1) tie, (2,3) tie -> 4 pairs, 1 consistent
    assert pc["pairs"] == 4
    assert pc["consistent"] == pytest.approx(1 / 4)
    assert pc["consistent_decided"] == pytest.approx(1 / 2)  # (0,1) and (0,3) are decided
    assert pc["chance"] == pytest.approx(1 / 2)


def test_a_judge_that_always_picks_the_first_shown_is_never_consistent():
    js = [sample(i, p, (9, 1) if p == AB else (1, 9)) for i, p in enumerate([AB, BA, AB, BA])]
    pc = position_consistency([js, js])
    assert pc["pairs"] == 8 and pc["consistent"] == 0.0 and pc["consistent_decided"] == 0.0
    assert position_consistency([[sample(0, AB, (9, 1)), sample(1, AB, (9, 1))]]) == {"pairs": 0}


def test_chance_level_follows_each_benchmark_rule():
    assert chance_score("rm-bench", load("rm-bench", DATA / "rm_bench.json")) == 0.5
    assert chance_score("judgebench", load("judgebench", DATA / "judgebench.jsonl")) == 0.5
    assert chance_score("rewardbench2", load("rewardbench2", DATA / "rewardbench2.jsonl")) == 0.25
    rmb = load("rmb", DATA / "rmb.jsonl")  # a pair (1/2) and a best-of-3 (1/3): RMB's mean of the two
    assert chance_score("rmb", rmb) == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert chance_score("realmistake", load("realmistake", DATA / "realmistake.jsonl")) == 0.5


def test_per_subset_curves_with_the_flag_or_when_few():
    few = {"subsets": {s: {} for s in "abcd"}}
    many = {"subsets": {str(s): {} for s in range(12)}}
    one = {"subsets": {"a": {}}}
    assert show_subsets(few, None) and not show_subsets(many, None) and not show_subsets(one, None)
    assert show_subsets(many, True) and not show_subsets(few, False)


# --- end to end ------------------------------------------------------------------------------


def first_shown_bias(shown, seed, i):
    """A judge that scores by length and adds 2 to whatever it sees first."""
    r = random.Random(seed * 1000 + i)
    return verdict([min(10, 2 + len(s) // 80 + r.randint(0, 2) + (2 if p == 0 else 0)) for p, s in enumerate(shown)])


def test_bench_rm_bench_and_judgebench_end_to_end(tmp_path):
    res = run_bench(
        GRM(FakeBackend(first_shown_bias)),
        ["rm-bench", "judgebench"],
        [str(DATA / "rm_bench.json"), str(DATA / "judgebench.jsonl")],
        [1, 2, 4],
        tmp_path,
    )
    rm, jb = res["benchmarks"]["rm-bench"], res["benchmarks"]["judgebench"]
    assert rm["n_examples"] == 36 and jb["n_examples"] == 6
    assert set(rm["sections"]["4"]) == {"Chat", "Math", "Code", "Safety", "Easy", "Normal", "Hard", "Score"}
    assert rm["curve"]["4"]["score"] == pytest.approx(rm["sections"]["4"]["Score"])
    assert set(jb["subsets"]) == {"knowledge", "reasoning", "math", "coding"}
    for b in (rm, jb):
        assert b["chance"] == 0.5 and b["position_consistency"]["pairs"] > 0
        assert all(b["curve"][k]["score_strict"] <= b["curve"][k]["score"] for k in ("1", "2", "4"))
    md = (tmp_path / "results.md").read_text()
    assert "| RM-Bench | 36 | 50.0 |" in md and "| JudgeBench | 6 | 50.0 |" in md
    assert "RM-Bench: domains and style difficulty" in md and "Style matrix at k = 4" in md
    assert "best stays best across orders" in md and "Ties counted as wrong" in md
    assert (tmp_path / "accuracy_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert rows[1]["style"] == [0, 1] and "style" not in rows[-1]


def test_cli_bench_runs_both_new_benchmarks(tmp_path, monkeypatch):
    from rewardscale import cli, config, models

    monkeypatch.setattr(config, "make_backend", lambda name, **options: FakeBackend(first_shown_bias))
    monkeypatch.setattr(models, "is_assembled", lambda name: True)
    runner = CliRunner()
    for name, file in (("rm-bench", "rm_bench.json"), ("judgebench", "judgebench.jsonl")):
        out = tmp_path / name
        args = ["bench", name, "-d", str(DATA / file), "-k", "1,2", "--out", str(out), "-m", "fake", "--limit", "2"]
        result = runner.invoke(cli.app, [*args, "--per-subset"])
        assert result.exit_code == 0, result.output
        results = json.loads((out / "results.json").read_text())
        assert results["benchmarks"][name]["n_examples"] == (18 if name == "rm-bench" else 2)
