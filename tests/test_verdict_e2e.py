"""Forced verdicts and expected scores on the real embedded engine (llama.cpp, fixture model)."""

import pytest

from rewardscale import GRM, Sampling, Status
from rewardscale.backends.llamacpp import LlamaCppBackend


@pytest.mark.slow
def test_llamacpp_forces_a_verdict_on_truncated_samples_and_reads_expected_scores():
    """A 24-token budget cuts every sample before its verdict; each one is then forced through
    the GBNF grammar (status FORCED, scores in 1..10), and expected mode reads E[score] from the
    verdict's logprobs."""
    from rewardscale import models

    backend = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=2, ctx_per_slot=2048, threads=2)
    grm = GRM(backend, sampling=Sampling(max_tokens=512), force_verdict=True, critique_budget=24, score_mode="expected")
    with grm:
        r = grm.score("What is 17*23?", ["17*23 = 391.", "17*23 = 401."], k=2)
    assert len(r.samples) == 2
    for j in r.samples:
        assert j.finish_reason == "length"  # the budget cut it
        assert j.status is Status.FORCED, (j.status, j.text)
        assert len(j.scores) == 2 and all(1 <= s <= 10 for s in j.scores)
        assert j.expected is not None and all(1.0 <= e <= 10.0 for e in j.expected)
        assert j.text.rstrip().endswith("}")
    assert r.rewards == pytest.approx([sum(j.expected[i] for j in r.samples) for i in range(2)])


@pytest.mark.slow
def test_llamacpp_continues_blind_principles():
    """Blind principles on the real engine: each sample's text starts with a draft written from
    the conversation alone (an assistant prefix llama.cpp continues), and ends in a verdict."""
    from rewardscale import models

    backend = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=2, ctx_per_slot=2048, threads=2)
    grm = GRM(
        backend,
        sampling=Sampling(max_tokens=64),
        principles="blind",
        principles_budget=48,
        force_verdict=True,
        critique_budget=32,
    )
    with grm:
        r = grm.score("What is 17*23?", ["17*23 = 391.", "17*23 = 401."], k=2)
    assert len(r.samples) == 2
    for j in r.samples:
        assert j.text.startswith("Specific Criteria: ") and "\n\nAnalysis:" in j.text, j.text
        assert j.principles and j.valid, (j.status, j.text)


@pytest.mark.slow
def test_llamacpp_forces_the_verdict_inside_the_sample_s_own_decode():
    """verdict_in_slot on the real engine: the budget grammar ends each sample's text at 24 x 4
    characters with a verdict in the same decode, so no sample needs the second pass."""
    from rewardscale import models

    backend = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=2, ctx_per_slot=2048, threads=2)
    grm = GRM(backend, sampling=Sampling(max_tokens=256), force_verdict=True, critique_budget=24, verdict_in_slot=True)
    with grm:
        r = grm.score("What is 17*23?", ["17*23 = 391.", "17*23 = 401."], k=2)
    assert grm.phase_seconds["verdicts"] == 0.0  # no second pass
    for j in r.samples:
        assert j.valid and j.status in (Status.OK, Status.FORCED), (j.status, j.text)
        body = j.text[: j.text.rindex("Scores: \\boxed{")].rstrip()
        assert len(body) <= 24 * 4, j.text
        assert len(j.scores) == 2 and all(1 <= s <= 10 for s in j.scores)
