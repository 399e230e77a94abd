"""Compute-aware bench: generated tokens and seconds per example at every k, checked by hand
against the scripted fake judge (10 tokens per completion)."""

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from rewardscale import GRM
from rewardscale.backends.base import Capabilities, Completion, GenerationRequest
from rewardscale.bench import load, run_bench
from rewardscale.bench.cost import Timing
from rewardscale.bench.run import timed_sampling
from rewardscale.bench.runner import BenchData, evaluate
from rewardscale.grm import with_q
from rewardscale.store import SampleStore
from rewardscale.verdict import VERDICT_PREFIX

from .fakes import FakeBackend, length_judge, shown_responses

DATA = Path(__file__).parent / "data"
TOKENS = 10  # FakeBackend's tokens per completion


def fails_first_completion():
    """A judge whose very first completion has no verdict (so that sample is drawn twice)."""
    calls = []

    def judge(shown, seed, i):
        calls.append(seed)
        return "Analysis: thinking..." if len(calls) == 1 else length_judge(shown, seed, i)

    return judge


def rambler(shown, seed, i):
    return "Specific Criteria: accuracy.\nAnalysis: both are fine and"


class VerdictFake(FakeBackend):
    """Forces each verdict (scores = shown lengths) at `VERDICT_TOKENS` tokens per verdict."""

    capabilities = Capabilities(verdicts=True, verdict_constraint="grammar")
    VERDICT_TOKENS = 3

    def verdicts(self, requests, sampling):
        out = []
        for r in requests:
            assert r.prefix.endswith(VERDICT_PREFIX)
            shown = shown_responses(GenerationRequest(r.messages, 1, r.seed))
            text = ", ".join(str(max(1, min(10, len(s)))) for s in shown) + "}"
            out.append(Completion(text, "stop", tokens=self.VERDICT_TOKENS))
        return out


class ConstantMetaRM:
    """A meta RM that gives every valid sample q = 0.5."""

    def score_samples(self, requests, judgments):
        return [[0.5 if j.valid else None for j in js] for js in judgments]


def two_pairs():
    return load("rewardbench", DATA / "rewardbench.jsonl")[:2]


def test_tokens_per_example_count_retries_and_scale_k_over_K():
    examples = two_pairs()
    grm = GRM(FakeBackend(fails_first_completion()))
    bench = BenchData("rewardbench", examples)
    bench.judgments = grm.sample([e.request for e in examples], 4)
    per_sample = sorted(j.tokens for js in bench.judgments for j in js)
    assert per_sample == [TOKENS] * 7 + [2 * TOKENS]  # one sample took two attempts
    res = evaluate([bench], [1, 2, 4])
    curve = res["benchmarks"]["rewardbench"]["curve"]
    # K = 4 samples cost 4*10 + 10 (the retry) and 4*10 tokens: 45 per example on average
    assert [curve[k]["tokens_per_example"] for k in ("1", "2", "4")] == [11.25, 22.5, 45.0]
    assert res["benchmarks"]["rewardbench"]["tokens_per_sample"] == 45 / 4
    assert all(curve[k]["seconds_per_example"] is None for k in curve)  # no timing given


def test_forced_verdict_tokens_are_part_of_a_samples_cost():
    examples = two_pairs()
    grm = GRM(VerdictFake(rambler), force_verdict=True)
    bench = BenchData("rewardbench", examples)
    bench.judgments = grm.sample([e.request for e in examples], 2)
    assert {j.status.value for js in bench.judgments for j in js} == {"forced"}
    assert {j.tokens for js in bench.judgments for j in js} == {TOKENS + VerdictFake.VERDICT_TOKENS}
    curve = evaluate([bench], [1, 2])["benchmarks"]["rewardbench"]["curve"]
    assert curve["2"]["tokens_per_example"] == 2 * (TOKENS + VerdictFake.VERDICT_TOKENS)


def test_seconds_are_apportioned_by_tokens_and_metarm_adds_its_scoring():
    examples = two_pairs()
    bench = BenchData("rewardbench", examples)
    judgments = GRM(FakeBackend()).sample([e.request for e in examples], 4)
    bench.judgments = with_q(judgments, ConstantMetaRM().score_samples([e.request for e in examples], judgments))
    # 8 samples, 80 tokens in 16 s: 0.2 s per token; the meta RM takes 0.5 s per sample
    timing = Timing(seconds=16.0, tokens=80, samples=8, metarm_seconds_per_sample=0.5)
    res = evaluate([bench], [1, 2, 4], metarm=True, timing=timing)
    b = res["benchmarks"]["rewardbench"]
    assert b["curve"]["4"]["seconds_per_example"] == pytest.approx(8.0)  # 40 tokens * 0.2 s
    assert b["curve"]["1"]["seconds_per_example"] == pytest.approx(2.0)
    assert b["curve_metarm"]["2"]["tokens_per_example"] == 20.0
    assert b["curve_metarm"]["2"]["seconds_per_example"] == pytest.approx(4.0 + 2 * 0.5)
    assert res["timing"]["seconds_per_token"] == pytest.approx(0.2)


def test_seconds_fall_back_to_samples_when_the_backend_reports_no_tokens():
    timing = Timing(seconds=8.0, tokens=0, samples=4)
    examples = two_pairs()
    bench = BenchData("rewardbench", examples)
    bench.judgments = GRM(FakeBackend()).sample([e.request for e in examples], 2)
    bench.judgments = [[replace(j, tokens=0) for j in js] for js in bench.judgments]
    curve = evaluate([bench], [1, 2], timing=timing)["benchmarks"]["rewardbench"]["curve"]
    assert curve["2"]["seconds_per_example"] == pytest.approx(4.0) and curve["2"]["tokens_per_example"] == 0


def test_a_run_served_from_the_store_times_only_what_it_generated(tmp_path):
    examples = two_pairs()
    first = GRM(FakeBackend(), store=SampleStore(tmp_path / "s.sqlite"))
    t1 = timed_sampling(first, [BenchData("rewardbench", examples)], 4)
    assert (t1.tokens, t1.samples) == (8 * TOKENS, 8)
    again = GRM(FakeBackend(), store=SampleStore(tmp_path / "s.sqlite"))
    bench = BenchData("rewardbench", examples)
    t2 = timed_sampling(again, [bench], 4)
    assert (t2.tokens, t2.samples) == (0, 0) and t2.seconds_per_token() is None
    # the stored samples keep their token counts, so the tokens per example are the same
    assert {j.tokens for js in bench.judgments for j in js} == {TOKENS}


class SlowVerdicts(VerdictFake):
    """Forcing that takes a measurable 0.2 s per verdict call."""

    def verdicts(self, requests, sampling):
        time.sleep(0.2)
        return super().verdicts(requests, sampling)


def test_the_wall_time_of_forcing_is_its_own_phase(tmp_path):
    grm = GRM(SlowVerdicts(rambler), force_verdict=True)
    res = run_bench(grm, ["rewardbench"], [str(DATA / "rewardbench.jsonl")], [1, 2], tmp_path)
    phases = res["timing"]["seconds_by_phase"]
    assert set(phases) == {"checks", "drafts", "samples", "verdicts"} and phases["drafts"] == phases["checks"] == 0
    # one verdict call per request (the whole sample batch is forced together): at least 0.2 s
    assert 0.2 <= phases["verdicts"] <= res["timing"]["seconds"]
    assert phases["verdicts"] > phases["samples"]
    md = (tmp_path / "results.md").read_text()
    assert "; by phase: verdicts 0.2" in md and "%)" in md  # the fake samples take no measurable time


def test_report_has_the_compute_table_and_the_tokens_plot(tmp_path):
    res = run_bench(
        GRM(FakeBackend()),
        ["rewardbench"],
        [str(DATA / "rewardbench.jsonl")],
        [1, 2, 4],
        tmp_path,
        meta_rm=ConstantMetaRM(),
    )
    curve = res["benchmarks"]["rewardbench"]["curve"]
    assert [curve[k]["tokens_per_example"] for k in ("1", "2", "4")] == [10.0, 20.0, 40.0]
    assert curve["4"]["seconds_per_example"] is not None and curve["4"]["seconds_per_example"] >= 0
    assert res["timing"]["tokens_generated"] == 5 * 4 * TOKENS
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["benchmarks"]["rewardbench"]["curve_metarm"]["2"]["tokens_per_example"] == 20.0
    md = (tmp_path / "results.md").read_text()
    assert "## Compute per example" in md and "| RewardBench | 4 |" in md and "MetaRM@k" in md
    assert "| RewardBench | 2 | " in md and " 20.0 |" in md
    assert (tmp_path / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"


def test_an_old_store_gets_verdict_token_counts(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE verdicts (key TEXT PRIMARY KEY, model TEXT NOT NULL, text TEXT NOT NULL, "
        "finish_reason TEXT, logprobs TEXT, run INTEGER NOT NULL, created REAL NOT NULL)"
    )
    db.execute("INSERT INTO verdicts VALUES ('old', 'm', '7}', 'stop', NULL, 1, 0)")
    db.commit()
    db.close()
    store = SampleStore(path)
    store.put_verdict("m", "new", Completion("3}", "stop", tokens=2))
    got = store.get_verdicts(["old", "new"])
    assert (got["old"].tokens, got["new"].tokens) == (0, 2)
    assert store.stats.generated_tokens == 2
