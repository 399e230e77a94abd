"""Server pieces without HTTP: the dynamic batcher, metrics text, OpenRLHF splitting, reward scales."""

from __future__ import annotations

import pytest

from rewardscale import GRM, Request
from rewardscale.backends import BackendError
from rewardscale.scales import scaled
from rewardscale.serve.batcher import DynamicBatcher, QueueFull
from rewardscale.serve.config import ServerConfig
from rewardscale.serve.metrics import Metrics
from rewardscale.serve.openrlhf import parse_call, split_query
from rewardscale.types import InvalidRequest, Reward

from .fakes import FakeBackend


def req(*responses: str, query: str = "q") -> Request:
    return Request.make(query, list(responses))


def test_batcher_splits_a_big_call_into_bounded_batches_in_order():
    backend = FakeBackend()
    batcher = DynamicBatcher(GRM(backend), max_batch=2, max_wait_s=0.0)
    job = batcher.submit([req("a" * n) for n in range(1, 6)], k=1, timeout_s=30)
    batcher.start()
    rewards = job.future.result(timeout=30)
    batcher.stop()
    assert [r.rewards for r in rewards] == [[1], [2], [3], [4], [5]]
    assert [len(call) for call in backend.calls] == [2, 2, 1]


def test_batcher_gathers_calls_and_keeps_k_apart():
    backend = FakeBackend()
    batcher = DynamicBatcher(GRM(backend), max_batch=8, max_wait_s=0.0)
    # queued before the worker starts: what waits is taken together, but never across k
    jobs = [batcher.submit([req("ab")], k=2, timeout_s=30), batcher.submit([req("abc")], k=1, timeout_s=30),
            batcher.submit([req("abcd")], k=2, timeout_s=30)]  # fmt: skip
    batcher.start()
    out = [j.future.result(timeout=30)[0] for j in jobs]
    batcher.stop()
    assert [r.rewards for r in out] == [[4], [3], [8]]
    assert [r.k for r in out] == [2, 1, 2]
    # first backend call: both k=2 requests (2 prompts each with n=1... or one with n=2); second: the k=1 one
    assert len(backend.calls) == 2
    assert sum(g.n for g in backend.calls[0]) == 4 and sum(g.n for g in backend.calls[1]) == 1


def test_batcher_queue_bound_and_cancelled_work():
    backend = FakeBackend()
    batcher = DynamicBatcher(GRM(backend), max_batch=4, max_wait_s=0.0, max_queue=3)
    a = batcher.submit([req("a"), req("b")], k=1, timeout_s=30)
    with pytest.raises(QueueFull, match="holds 2 of 3"):
        batcher.submit([req("c"), req("d")], k=1, timeout_s=30)
    assert batcher.metrics.rejected[(("reason", "queue_full"),)] == 2
    b = batcher.submit([req("cc")], k=1, timeout_s=30)
    assert a.future.cancel()  # the client went away: its work is dropped, not scored
    batcher.start()
    assert b.future.result(timeout=30)[0].rewards == [2]
    batcher.stop()
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 1


def test_batcher_stop_fails_queued_calls():
    batcher = DynamicBatcher(GRM(FakeBackend()), max_batch=4)
    job = batcher.submit([req("a")], k=1, timeout_s=30)
    batcher.stop()
    with pytest.raises(RuntimeError, match="shutting down"):
        job.future.result(timeout=5)


def test_metrics_text_format():
    m = Metrics()
    m.http_call("/v1/score", 200, 0.3)
    m.batch(2, 1.5, ["ok", "ok", "no_verdict", "retried"])
    m.gauge("rewardscale_queue_depth", "depth", lambda: 3)
    text = m.render()
    assert 'rewardscale_http_requests_total{endpoint="/v1/score",code="200"} 1' in text
    assert 'rewardscale_http_request_duration_seconds_bucket{endpoint="/v1/score",le="0.25"} 0' in text
    assert 'rewardscale_http_request_duration_seconds_bucket{endpoint="/v1/score",le="0.5"} 1' in text
    assert "rewardscale_parse_failure_rate 0.5" in text and "rewardscale_queue_depth 3" in text


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="max_batch"):
        ServerConfig(max_batch=0)
    with pytest.raises(ValueError, match="above max_k"):
        ServerConfig(k=8, max_k=4)
    with pytest.raises(ValueError, match="reward_scale"):
        ServerConfig(reward_scale="log")


def test_the_server_config_holds_the_judge_settings_its_grm_was_built_with():
    from rewardscale.config import JudgeConfig
    from rewardscale.serve.app import create_app

    judge = JudgeConfig(seed=7, max_retries=0)
    grm = GRM(FakeBackend(), judge)
    config = ServerConfig(judge=judge, auth_token="secret")
    assert config.to_dict()["judge"]["seed"] == 7 and config.to_dict()["auth_token"] == "***"
    assert create_app(grm, config, close_grm=False).state.server.grm is grm
    with pytest.raises(ValueError, match="config.judge differs"):
        create_app(grm, ServerConfig(judge=JudgeConfig(seed=8)), close_grm=False)
    assert ServerConfig(auth_token="").auth_token is None  # an empty env var is no token


def test_split_query_with_and_without_prompt():
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert split_query(prompt + "Hello!<|im_end|>", prompt, 0) == (prompt, "Hello!")
    assert split_query("<|endoftext|>" + prompt + "Yo", prompt, 0) == (prompt, "Yo")  # leading pad
    assert split_query(prompt + "Yo<|im_end|>", None, 0) == (prompt, "Yo")
    llama = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    assert split_query(llama + "Hey<|eot_id|>", None, 0) == (llama, "Hey")
    with pytest.raises(InvalidRequest, match=r"query\[3\] does not contain prompts\[3\]"):
        split_query("some other text", prompt, 3)


def test_parse_call_validates_fields():
    call = parse_call({"query": ["pa", "pb"], "prompts": ["p", "p"], "labels": [None, None]})
    assert call.responses == ["a", "b"] and call.prompts == ["p", "p"]
    with pytest.raises(InvalidRequest, match="'query'"):
        parse_call({"query": "pa"})
    with pytest.raises(InvalidRequest, match="'k' must be an integer"):
        parse_call({"query": ["pa"], "prompts": ["p"], "k": 1.5})


def test_scaled_rewards():
    result = {"rewards": [6.0, 14.0], "mean_scores": [3.0, 7.0], "n_valid": 2}
    assert scaled(result, "sum") == [6.0, 14.0]
    assert scaled(result, "mean") == [3.0, 7.0]
    assert scaled(result, "unit") == pytest.approx([2 / 9, 6 / 9])
    assert scaled({"rewards": [0.0], "mean_scores": [None], "n_valid": 0}, "unit") == [None]
    with pytest.raises(ValueError, match="unknown reward scale"):
        scaled(result, "log")  # type: ignore[arg-type]


class LongerIsRight:
    """A stand-in meta RM (no torch): q = 0.9 for a sample that puts the longest response first."""

    def score_samples(self, requests, judgments):
        return [[(0.9 if j.scores[-1] == max(j.scores) else 0.1) if j.valid else None for j in js] for js in judgments]


def test_batcher_metarm_shares_samples_and_votes_per_call():
    backend = FakeBackend()
    batcher = DynamicBatcher(GRM(backend), max_batch=8, max_wait_s=0.0, meta_rm=LongerIsRight())
    with pytest.raises(ValueError, match="k_meta must be >= 1"):
        batcher.submit([req("a")], k=2, timeout_s=30, k_meta=0)
    jobs = [batcher.submit([req("ab", "abcd")], k=4, timeout_s=30, k_meta=k_meta) for k_meta in (1, None, 6)]
    batcher.start()
    out = [j.future.result(timeout=30)[0] for j in jobs]
    batcher.stop()
    assert len(backend.calls) == 1  # one backend call for the three calls
    assert [r.k_meta for r in out] == [1, 2, 4] and all(r.method == "metarm" for r in out)
    assert [r.rewards for r in out] == [[2, 4], [4, 8], [8, 16]]
    assert all(j.q == 0.9 for r in out for j in r.samples)
    assert batcher.metrics.metarm_requests == 3 and batcher.metrics.metarm_samples == 12


def test_batcher_without_meta_rm_refuses_k_meta():
    batcher = DynamicBatcher(GRM(FakeBackend()))
    with pytest.raises(ValueError, match="needs a meta RM"):
        batcher.submit([req("a")], k=2, timeout_s=30, k_meta=1)


def test_config_k_meta_default_and_bounds():
    assert ServerConfig(k=4).meta_default(4) == 2 and ServerConfig(k=4).meta_default(1) == 1
    assert ServerConfig(k=4, k_meta=3).meta_default(8) == 3 and ServerConfig(k=4, k_meta=3).meta_default(2) == 2
    assert ServerConfig(k=2, k_meta=3).meta_default(2) == 2  # above k: capped, as everywhere
    with pytest.raises(ValueError, match="k_meta must be >= 1"):
        ServerConfig(k=2, k_meta=0)


class FailingBackend(FakeBackend):
    """Every backend call raises `error`."""

    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def generate(self, requests, sampling, progress=None):
        self.calls.append(list(requests))
        raise self.error


@pytest.mark.parametrize("error,calls", [(BackendError("every request failed"), 1), (RuntimeError("poisoned"), 4)])
def test_a_failed_batch_is_split_only_when_one_request_may_be_poisoned(error, calls):
    """BackendError: every request already failed on its own, so nothing is sent again; any other
    error may be one request's, so the batch is scored one by one (1 + 3 calls)."""
    backend = FailingBackend(error)
    batcher = DynamicBatcher(GRM(backend, max_retries=0), max_batch=8, max_wait_s=0.0)
    jobs = [batcher.submit([req("a" * n)], k=1, timeout_s=30) for n in (1, 2, 3)]
    batcher.start()
    for job in jobs:
        with pytest.raises(type(error)):
            job.future.result(timeout=30)
    batcher.stop()
    assert len(backend.calls) == calls
    assert batcher.outcomes.failures()[:2] == (3, 3)


def test_a_batch_past_its_deadline_is_a_timeout_not_a_failure():
    """A backend call that ends after its calls' deadline (its upstream work cut) expires them (504)."""
    import time

    from rewardscale.serve.batcher import Expired

    class Slow(FakeBackend):
        def generate(self, requests, sampling, progress=None):
            time.sleep(0.5)
            raise BackendError("cancelled: the caller's deadline passed")

    batcher = DynamicBatcher(GRM(Slow(), max_retries=0), max_batch=8, max_wait_s=0.0)
    job = batcher.submit([req("a")], k=1, timeout_s=0.2)
    batcher.start()
    with pytest.raises(Expired):
        job.future.result(timeout=30)
    batcher.stop()


def test_reward_to_dict_is_the_servers_result_shape_and_round_trips():
    reward = GRM(FakeBackend()).score("q", ["a", "bb"], k=2)
    result = reward.to_dict(samples=False, request=False)
    documented = {"id", "rewards", "mean_scores", "best", "win_prob", "k", "n_valid", "n_abstained", "method"}
    assert set(result) == documented  # README "Reward server" table, /v1/score results
    full = reward.to_dict()
    assert set(full) == documented | {"request", "samples"}
    assert Reward.from_dict(full).to_dict() == full
