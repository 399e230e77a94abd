"""TRL and verl reward functions: grouping by prompt, conversational inputs, in process and
through the real server process (scripted judge)."""

from __future__ import annotations

import asyncio

import pytest

from rewardscale import GRM
from rewardscale.integrations import verl
from rewardscale.integrations.text import as_query, as_response, group_by_prompt, strip_special, unchat
from rewardscale.integrations.trl import AsyncGRMReward, GRMReward

from .fakes import FakeBackend, shown_responses, verdict
from .server_proc import server_process


@pytest.fixture(scope="module")
def url():
    with server_process(["-m", "tests.serve_fake"]) as u:
        yield u


def test_unchat_and_strip_special():
    text = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    assert unchat(text) == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert unchat("plain question") is None
    assert strip_special("<s> answer </s>") == "answer"
    assert strip_special("a <|im_end|> b<|im_end|><|endoftext|>") == "a <|im_end|> b"  # only the ends
    assert as_query([{"role": "tool", "content": "42"}]) == [{"role": "user", "content": "[tool]\n42"}]
    assert as_response([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"


def test_group_by_prompt_keeps_order_and_splits_big_groups():
    prompts = ["p1", "p2", "p1", "p2", "p1"]
    g = group_by_prompt(prompts, ["a", "b", "c", "d", "e"], max_group=2)
    assert [r.responses for r in g.requests] == [("a", "c"), ("e",), ("b", "d")]
    assert g.where == [(0, 0), (2, 0), (0, 1), (2, 1), (1, 0)]
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        group_by_prompt(["a", "b"], ["x"])


def test_trl_reward_scores_each_prompt_group_in_one_request():
    backend = FakeBackend()
    reward = GRMReward(grm=GRM(backend), k=2, scale="mean")
    p1 = [{"role": "user", "content": "Say something long"}]
    p2 = [{"role": "system", "content": "Be terse"}, {"role": "user", "content": "Say something short"}]
    prompts = [p1, p1, p1, p2, p2, p2]
    completions = [[{"role": "assistant", "content": "x" * n}] for n in (1, 5, 3, 2, 9, 4)]
    out = reward(prompts=prompts, completions=completions, completion_ids=None, trainer_state=None)
    assert out == [1, 5, 3, 2, 9, 4]
    # one backend call; every prompt the judge saw holds one group's three completions
    assert len(backend.calls) == 1
    assert all(len(shown_responses(g)) == 3 for g in backend.prompts)
    assert sum(g.n for g in backend.prompts) == 4  # 2 groups x k=2
    assert reward.__name__ == "grm"


def test_trl_reward_abstains_as_none_and_string_prompts():
    backend = FakeBackend(judge=lambda shown, seed, i: "no verdict here")
    reward = GRMReward(grm=GRM(backend, max_retries=0), k=1)
    assert reward(prompts=["q", "q"], completions=["a", "b"]) == [None, None]
    assert GRMReward(grm=GRM(backend, max_retries=0), k=1, abstain=0.0)(prompts=["q"], completions=["a"]) == [0.0]


def test_trl_reward_in_process_async():
    reward = AsyncGRMReward(grm=GRM(FakeBackend()), k=1, scale="sum")
    assert asyncio.run(reward(prompts=["q", "q"], completions=["aa", "aaaa"])) == [2, 4]


def test_trl_reward_through_the_server(url):
    sync = GRMReward(url=url, k=2, scale="unit")
    assert sync(prompts=["q"] * 3, completions=["a", "aaaa", "a" * 10]) == pytest.approx([0, 1 / 3, 1])
    both = AsyncGRMReward(url=url, k=1, scale="mean")

    async def twice():
        return await asyncio.gather(both(prompts=["q"], completions=["aaa"]), both(prompts=["r"], completions=["a"]))

    assert asyncio.run(twice()) == [[3], [1]]


def test_trl_reward_rejects_both_sources():
    with pytest.raises(ValueError, match="not both"):
        GRMReward(grm=GRM(FakeBackend()), url="http://x")


def test_verl_compute_score_batch_groups_rollouts(url):
    infos = [{"question": "Q1"}, {"question": "Q2"}, {"question": "Q1"}]
    out = verl.compute_score_batch(["ds"] * 3, ["aa", "a" * 7, "aaaa"], ["", "", ""], infos, url=url, k=2)
    assert out == pytest.approx([1 / 9, 6 / 9, 3 / 9])


def test_verl_compute_score_single_messages_and_reference(url):
    info = {"prompt": [{"role": "user", "content": "What is 2+2?"}]}
    assert verl.compute_score("ds", "aaaaa", "4", info, url=url, scale="mean", reference=True) == 5
    q = verl.query_of(info, "4", reference=True)
    assert q[-1]["content"].endswith("(Reference answer, for the judge only: 4)")
    with pytest.raises(ValueError, match="extra_info"):
        verl.compute_score("ds", "a", "4", {"answer": "4"}, url=url)


class TrustFirstCompletion:
    """A stand-in meta RM (no torch): q 0.9 for samples that rank response 0 higher, else 0.1."""

    def score_samples(self, requests, judgments):
        return [[(0.9 if j.scores[0] > j.scores[1] else 0.1) if j.valid else None for j in js] for js in judgments]


def test_trl_reward_metarm_in_process():
    # completion 0 of every prompt ranks "right" first, completion 1 the other way: Voting@4 ties,
    # MetaRM@4 keeps the two samples the meta RM trusts
    backend = FakeBackend(lambda shown, seed, i: verdict([9 if (s == "right") == (i == 0) else 2 for s in shown]))
    plain = GRMReward(grm=GRM(backend, max_retries=0), k=4, scale="sum")
    assert plain(prompts=["q", "q"], completions=["right", "wrong"]) == [22, 22]
    meta = GRMReward(grm=GRM(backend, max_retries=0), k=4, scale="sum", meta_rm=TrustFirstCompletion())
    assert meta(prompts=["q", "q"], completions=["right", "wrong"]) == [18, 4]
    one = AsyncGRMReward(grm=GRM(backend, max_retries=0), k=4, scale="sum", meta_rm=TrustFirstCompletion(), k_meta=1)
    assert asyncio.run(one(prompts=["q", "q"], completions=["right", "wrong"])) == [9, 2]


def test_trl_reward_metarm_bad_settings():
    with pytest.raises(ValueError, match="k_meta must be >= 1"):
        GRMReward(grm=GRM(FakeBackend()), k=2, meta_rm=TrustFirstCompletion(), k_meta=0)
    with pytest.raises(ValueError, match="needs a meta RM"):
        GRMReward(grm=GRM(FakeBackend()), k=2, k_meta=1)
    with pytest.raises(ValueError, match="serve --meta-rm"):
        GRMReward(url="http://x", k=2, meta_rm=TrustFirstCompletion())
    with pytest.raises(Exception, match="no such directory|not a rewardscale meta RM"):
        GRMReward(grm=GRM(FakeBackend()), k=2, meta_rm="/nonexistent/metarm")
