"""Forced verdicts (constrained continuation), expected scores from logprobs, and their GRM wiring."""

import math
import re

import pytest

from rewardscale import GRM, Status
from rewardscale.backends.base import Capabilities, Completion, GenerationRequest
from rewardscale.types import Judgment, Request, SampleSpec
from rewardscale.verdict import (
    VERDICT_PREFIX,
    TokenLogprobs,
    budget_grammar,
    budget_verdict,
    can_force,
    expected_scores,
    forcing_prefix,
    parse_logprobs,
    strip_prefix,
    verdict_grammar,
    verdict_regex,
)

from .fakes import FakeBackend, shown_responses, verdict


def tok(token: str, alts: dict[str, float]) -> TokenLogprobs:
    """A token whose top alternatives have the given probabilities."""
    return TokenLogprobs(token, math.log(alts.get(token, 1e-9)), tuple((t, math.log(p)) for t, p in alts.items()))


class ForcingFake(FakeBackend):
    """A fake judge that can also complete verdicts: each forced score is the shown response's
    length (capped to 1..10), with logprobs that put `spread` of the mass one point lower."""

    capabilities = Capabilities(verdicts=True, verdict_constraint="grammar")

    def __init__(self, judge=None, spread: float = 0.0, **kw):
        super().__init__(judge, **kw)
        self.spread = spread
        self.verdict_calls = []
        self.samplings = []

    def generate(self, requests, sampling, progress=None):
        if not any(r.verdict is not None for r in requests):
            self.samplings.append(sampling)
        return super().generate(requests, sampling, progress)

    def verdicts(self, requests, sampling):
        self.verdict_calls.append(list(requests))
        out = []
        for r in requests:
            assert r.prefix.endswith(VERDICT_PREFIX)
            shown = shown_responses(GenerationRequest(r.messages, 1, r.seed))
            scores = [max(2, min(9, len(s))) for s in shown]
            lps = []
            for k, s in enumerate(scores):
                alts = {str(s): 1 - self.spread, str(s - 1): self.spread} if self.spread else {str(s): 1.0}
                lps.append(tok(str(s), alts))
                lps.append(tok("}" if k == len(scores) - 1 else ",", {"}" if k == len(scores) - 1 else ",": 1.0}))
            text = ", ".join(map(str, scores)) + "}"
            logprobs = tuple(lps) if r.top_logprobs else None
            out.append(Completion(text=text, finish_reason="stop", logprobs=logprobs))
        return out


def rambler(shown, seed, i):
    return "Specific Criteria: accuracy (100%).\nAnalysis: both are fine and I keep thinking about"


def test_grammar_and_regex_admit_exactly_n_scores_in_range():
    assert verdict_grammar(2) == 'root ::= score ", " score "}"\nscore ::= [1-9] | "10"\n'
    rx = re.compile(verdict_regex(3))
    assert rx.fullmatch("1, 10, 7}")
    for bad in ["1, 10}", "0, 1, 2}", "11, 1, 2}", "1, 2, 3, 4}", "1,2,3}"]:
        assert not rx.fullmatch(bad), bad
    with pytest.raises(ValueError):
        verdict_grammar(0)


def test_forcing_prefix_drops_a_broken_verdict_but_keeps_the_analysis():
    text = "Analysis: A is right.\nScores: \\boxed{7, "
    assert forcing_prefix(text) == "Analysis: A is right.\n" + VERDICT_PREFIX
    far = "Scores: are given below.\n" + "x" * 300
    assert forcing_prefix(far) == far + "\n" + VERDICT_PREFIX
    assert forcing_prefix("") == VERDICT_PREFIX
    assert forcing_prefix("Analysis: ok\nScores: \\boxed{3, 4}", cut=13) == "Analysis: ok\n" + VERDICT_PREFIX


def test_strip_prefix_handles_servers_that_echo_the_prefill():
    assert strip_prefix("abc Scores: \\boxed{1, 2}", "abc Scores: \\boxed{") == "1, 2}"
    assert strip_prefix("1, 2}", "abc Scores: \\boxed{") == "1, 2}"


def test_expected_scores_weight_digit_alternatives():
    lps = [tok("8", {"8": 0.5, "7": 0.25, "x": 0.25}), tok(",", {",": 1.0}), tok(" ", {" ": 1.0}), tok("3", {"3": 1.0})]
    # "x" is not a score: renormalised over 8 and 7
    assert expected_scores(lps, 2) == pytest.approx((8 * 2 / 3 + 7 / 3, 3.0))
    assert expected_scores(lps, 3) is None


def test_expected_scores_split_ten_and_one_for_digit_tokenizers():
    # sampled "1" then "0": P("0"|"1") = 0.75 read at the next position
    ten = [tok("1", {"1": 0.8, "9": 0.2}), tok("0", {"0": 0.75, "}": 0.25})]
    assert expected_scores(ten, 1) == pytest.approx((0.8 * (0.75 * 10 + 0.25 * 1) + 0.2 * 9,))
    # sampled "9": the "1" mass is read as 10 (nearer 9 than 1)
    nine = [tok("9", {"9": 0.6, "1": 0.4}), tok("}", {"}": 1.0})]
    assert expected_scores(nine, 1) == pytest.approx((0.6 * 9 + 0.4 * 10,))
    # sampled "2": the "1" mass is read as 1
    two = [tok("2", {"2": 0.5, "1": 0.5}), tok("}", {"}": 1.0})]
    assert expected_scores(two, 1) == pytest.approx((1.5,))
    # a tokenizer with "10" as one token
    single = [tok("10", {"10": 0.5, "9": 0.5}), tok("}", {"}": 1.0})]
    assert expected_scores(single, 1) == pytest.approx((9.5,))


def test_parse_logprobs_reads_openai_shape():
    top = [{"token": "7", "logprob": -0.1}, {"token": "8", "logprob": -2.4}]
    content = [{"token": "7", "logprob": -0.1, "top_logprobs": top}]
    (t,) = parse_logprobs(content)
    assert t.token == "7" and t.top[1] == ("8", -2.4)
    assert parse_logprobs(None) is None


def test_forced_status_is_valid_and_round_trips():
    assert Status.FORCED.valid
    j = Judgment(SampleSpec(0, (1, 0), 5), Status.FORCED, "t", scores=(3, 4), expected=(3.5, 4.0))
    back = Judgment.from_dict(j.to_dict())
    assert back.status is Status.FORCED and back.expected == (3.5, 4.0) and back.valid


def test_samples_without_verdict_are_forced_not_retried():
    backend = ForcingFake(rambler, finish_reason="length")
    r = GRM(backend, force_verdict=True).score("q", ["a", "bbbbb"], k=4)
    assert len(backend.calls) == 1  # no retries
    assert [j.status for j in r.samples] == [Status.FORCED] * 4
    assert all(j.scores == (2, 5) for j in r.samples)  # mapped back to the original order
    assert r.rewards == [8.0, 20.0] and r.best == 1
    j = r.samples[0]
    assert j.text.endswith(VERDICT_PREFIX + f"{j.shown_scores[0]}, {j.shown_scores[1]}}}")
    assert j.critique.startswith("both are fine") and j.note.startswith("forced after truncated")


def test_valid_samples_are_left_alone_when_forcing():
    backend = ForcingFake()
    r = GRM(backend, force_verdict=True).score("q", ["a", "bb"], k=4)
    assert backend.verdict_calls == [] and all(j.status is Status.OK for j in r.samples)


def test_without_forcing_or_capability_the_bounded_retry_applies():
    backend = ForcingFake(rambler)
    r = GRM(backend, max_retries=2).score("q", ["a", "b"], k=2)
    assert len(backend.calls) == 3 and backend.verdict_calls == []
    assert all(j.status is Status.NO_VERDICT and j.attempts == 3 for j in r.samples)
    plain = FakeBackend(rambler)
    assert not can_force(plain)
    r = GRM(plain, max_retries=1).score("q", ["a", "b"], k=2)
    assert len(plain.calls) == 2 and r.n_valid == 0


def test_force_verdict_on_a_backend_that_cannot_force_is_an_error_not_a_no_op():
    # like score_mode='expected': an option the backend cannot honour is refused at construction
    with pytest.raises(ValueError, match="force_verdict needs a backend that decodes a constrained verdict"):
        GRM(FakeBackend(rambler), force_verdict=True)
    with pytest.raises(ValueError, match="force_verdict"):
        GRM(FakeBackend(), force_verdict=True, critique_budget=64)


def test_critique_budget_caps_generation_only_when_forcing_applies():
    backend = ForcingFake(rambler, finish_reason="length")
    GRM(backend, force_verdict=True, critique_budget=64).score("q", ["a", "b"], k=2)
    assert backend.samplings[-1].max_tokens == 64
    grm = GRM(ForcingFake(), critique_budget=64)  # not forcing: the budget does not apply
    assert grm.generation_sampling.max_tokens == grm.sampling.max_tokens
    with pytest.raises(ValueError):
        GRM(backend, critique_budget=0)


def test_expected_mode_breaks_integer_ties():
    # both responses get the same integer; the logprobs put 40% one point lower for each, so the
    # expected scores equal too; then a judge whose lengths differ gives different expectations
    backend = ForcingFake(lambda shown, seed, i: verdict([5, 5]), spread=0.4)
    r = GRM(backend, score_mode="expected").score("q", ["aaa", "aaaaaa"], k=2)
    assert all(j.status is Status.OK and j.scores == (5, 5) for j in r.samples)
    assert all(j.expected == pytest.approx((3 - 0.4, 6 - 0.4)) for j in r.samples)
    assert r.rewards == pytest.approx([2 * 2.6, 2 * 5.6]) and r.best == 1
    assert r.method == "voting-expected"
    # the integer mode on the same backend ties
    assert GRM(backend).score("q", ["aaa", "aaaaaa"], k=2).rewards == [10.0, 10.0]


def test_expected_mode_needs_a_verdict_backend():
    with pytest.raises(ValueError, match="expected"):
        GRM(FakeBackend(), score_mode="expected")
    with pytest.raises(ValueError):
        GRM(FakeBackend(), score_mode="median")


def test_verdict_report_counts_own_forced_ties_and_position_bias():
    from rewardscale.verdict_report import verdict_report

    def j(status, shown, perm=(0, 1), expected=None):
        scores = None if shown is None else tuple(shown[perm.index(o)] for o in range(len(shown)))
        return Judgment(SampleSpec(0, perm, 0), status, "", scores=scores, shown_scores=shown, expected=expected)

    samples = [
        j(Status.OK, (8, 3)),  # first shown wins
        j(Status.OK, (5, 5), expected=(5.2, 4.9)),  # integer tie, broken by expected scores
        j(Status.FORCED, (2, 7), perm=(1, 0)),  # second shown wins
        j(Status.NO_VERDICT, None),
    ]
    rep = verdict_report([samples])
    assert rep.samples == 4 and rep.verdict_rate_unforced == 0.5 and rep.forced_rate == 0.25
    assert rep.valid_rate == 0.75
    assert rep.tie_rate == pytest.approx(1 / 3) and rep.tie_rate_expected == 0.0
    assert rep.first_position_win_rate == 0.5 and rep.expected_first_position_win_rate == 1.0
    assert rep.mean_score_by_position == pytest.approx([5.0, 5.0])
    assert rep.statuses == {"ok": 2, "forced": 1, "no_verdict": 1}
    assert "25.0% forced" in rep.summary()
    empty = verdict_report([])
    assert empty.tie_rate is None and empty.valid_rate == 0.0


def test_forced_and_expected_verdicts_are_stored_and_reused(tmp_path):
    from rewardscale.store import SampleStore
    from rewardscale.stored import StoredBackend

    def run(backend, **kw):
        store = SampleStore(tmp_path / "s.sqlite")
        # backend None: stored only, reading what the first backend's samples are stored under
        stored = StoredBackend(backend, store, model_id=None if backend else first_backend.model_id)
        try:
            return GRM(stored, force_verdict=True, **kw).score("q", ["a", "bbbbb"], k=4)
        finally:
            store.close()

    # every sample is cut short, so every one is forced; the verdicts are stored with the samples
    first_backend = ForcingFake(rambler, finish_reason="length", spread=0.3)
    first = run(first_backend, score_mode="expected")
    assert sum(len(c) for c in first_backend.verdict_calls) == 4
    # the same run again: samples and verdicts (with their logprobs) come from the store
    again_backend = ForcingFake(rambler, finish_reason="length", spread=0.3)
    again = run(again_backend, score_mode="expected")
    assert again_backend.calls == [] and again_backend.verdict_calls == []
    assert again.to_dict() == first.to_dict()
    assert all(j.status is Status.FORCED and j.expected is not None for j in again.samples)
    # a stored-only reader sees the forced verdicts too (integer mode: same key, logprobs not asked
    # for, so these are new verdict requests it cannot decode: they stay truncated, marked)
    stored = run(None, max_retries=0)
    assert [j.status for j in stored.samples] == [Status.TRUNCATED] * 4
    assert all("not in the store" in j.note for j in stored.samples)
    # ... while the integer-mode verdicts, once stored, are read back as forced
    run(ForcingFake(rambler, finish_reason="length"))
    stored = run(None, max_retries=0)
    assert [j.status for j in stored.samples] == [Status.FORCED] * 4
    assert stored.rewards == [8.0, 20.0]


def test_forcing_on_a_slotted_backend_draws_slot_sized_groups_with_the_same_result():
    """With a fixed number of slots (llama.cpp `parallel`), forced runs draw at most that many
    samples at a time, so each sample is still in its slot when its verdict is forced; the
    judgments are the same as drawing everything at once."""
    requests = [Request.make(f"q{i}", ["a" * (i + 1), "bbbbb"]) for i in range(5)]
    plain = ForcingFake(rambler, finish_reason="length")
    everything = GRM(plain, force_verdict=True).score_batch(requests, k=2)
    slotted = ForcingFake(rambler, finish_reason="length")
    slotted.capabilities = Capabilities(verdicts=True, verdict_constraint="grammar", slots=4)
    grouped = GRM(slotted, force_verdict=True).score_batch(requests, k=2)
    assert len(plain.calls) == 1 and [len(c) for c in slotted.calls] == [4, 4, 2]  # 2 requests x 2 orders
    assert [len(c) for c in slotted.verdict_calls] == [4, 4, 2]
    assert [r.to_dict() for r in grouped] == [r.to_dict() for r in everything]


class GrammarFake(ForcingFake):
    """A forcing fake that also generates under a grammar; its judge scripts the completion the
    budget grammar would let through."""

    capabilities = Capabilities(verdicts=True, verdict_constraint="grammar", constrained_generation=True)


def test_budget_grammar_ends_the_text_at_the_budget_with_a_verdict():
    g = budget_grammar(2, 40)
    assert "text{0,39} verdict? | text{40} verdict" in g
    assert 'verdict ::= "\\\\boxed{" score ", " score "}"' in g
    assert 'text ::= [^\\\\] | "\\\\" [^b]' in g  # the free text cannot write a box of its own
    with pytest.raises(ValueError):
        budget_grammar(2, 0)


def test_budget_verdict_labels_a_forced_box_and_leaves_an_own_verdict_alone():
    assert budget_verdict("Fine.\nScores: \\boxed{9, 2}", 40) == ("Fine.\nScores: \\boxed{9, 2}", False)
    assert budget_verdict("x" * 40 + "\\boxed{9, 2}", 40) == ("x" * 40 + "\n" + VERDICT_PREFIX + "9, 2}", True)
    # at the budget even a text that ends in the label counts as forced
    assert budget_verdict("x" * 32 + "Scores: \\boxed{3, 4}", 40)[1] is True
    assert budget_verdict("Fine. \\boxed{9, 2}", 40) == ("Fine.\n" + VERDICT_PREFIX + "9, 2}", True)
    assert budget_verdict("No verdict yet", 40) == ("No verdict yet", False)


def test_verdicts_in_slot_come_from_the_sample_s_own_decode():
    texts = {
        0: "Specific Criteria: accuracy.\nAnalysis: fine.\nScores: \\boxed{7, 3}",  # its own verdict
        1: "Specific Criteria: accuracy.\nAnalysis: " + "x" * 400 + "\\boxed{4, 6}",  # forced at 400 chars
        2: "Specific Criteria: accuracy.\nAnalysis: stopped early",  # no verdict: the verdict pass forces one
    }
    backend = GrammarFake(lambda shown, seed, i: texts[i % 3])
    r = GRM(backend, force_verdict=True, critique_budget=100, verdict_in_slot=True, shuffle=False).score(
        "q", ["a", "bbbbb"], k=3
    )
    (job,) = backend.calls[0]
    assert job.grammar == budget_grammar(2, 400)
    assert backend.samplings[0].max_tokens == 1024  # the grammar, not the token limit, ends the critique
    assert [j.status for j in r.samples] == [Status.OK, Status.FORCED, Status.FORCED]
    assert r.samples[1].text.endswith("x\n" + VERDICT_PREFIX + "4, 6}") and r.samples[1].scores == (4, 6)
    assert len(backend.verdict_calls) == 1 and len(backend.verdict_calls[0]) == 1  # only the sample without one
    assert r.samples[2].note.startswith("forced after no_verdict")


def test_verdict_in_slot_settings_are_checked():
    from rewardscale.config import ConfigError, JudgeConfig

    with pytest.raises(ConfigError, match="needs force_verdict and critique_budget"):
        JudgeConfig(verdict_in_slot=True, force_verdict=True)
    with pytest.raises(ConfigError, match="choose one"):
        JudgeConfig(verdict_in_slot=True, force_verdict=True, critique_budget=8, constrain_format=True)
    with pytest.raises(ConfigError, match="generates under a grammar"):
        GRM(ForcingFake(), force_verdict=True, critique_budget=8, verdict_in_slot=True)
