"""k samples of one prompt on the embedded engine: one prefill, then each sample a task of its own,
so that its verdict pass finds it in its slot (llama.cpp keeps only a parent task's tokens)."""

from __future__ import annotations

import threading

import pytest

from rewardscale.backends.base import GenerationRequest
from rewardscale.backends.llamacpp import LlamaCppBackend
from rewardscale.types import Sampling

from .fakes import verdict

PROMPT = ({"role": "user", "content": "Judge these."},)


class Engine:
    """Stands in for xllamacpp's Server: records bodies; `fail_seed` answers an error for that seed."""

    def __init__(self, fail_seed: int | None = None, fan_out_error: bool = False):
        self.bodies: list[dict] = []
        self.fail_seed, self.fan_out_error = fail_seed, fan_out_error
        self.lock = threading.Lock()

    def handle_chat_completions(self, body):
        with self.lock:
            self.bodies.append(body)
        if body["n"] > 1 and self.fan_out_error:
            return {"error": {"code": 500, "message": "boom"}}
        if body["seed"] == self.fail_seed and body["n"] == 1:
            return {"error": {"code": 500, "message": "no slot"}}
        text = verdict([body["seed"] % 10 or 10, 1])
        choice = {"message": {"content": text}, "finish_reason": "stop", "logprobs": {"content": [{}] * 7}}
        return {"choices": [dict(choice, index=i) for i in range(body["n"])], "usage": {"completion_tokens": 7}}


def test_k_samples_are_one_prefill_then_k_tasks_with_the_seeds_of_llamacpp_children():
    engine = Engine()
    backend = LlamaCppBackend.on_engine(engine, parallel=4, model_id="m")
    (out,) = backend.generate([GenerationRequest(PROMPT, n=3, seed=40)], Sampling(max_tokens=64))
    fan_out, *samples = engine.bodies
    assert (fan_out["n"], fan_out["max_tokens"], fan_out["seed"]) == (3, 1, 40)
    assert sorted(b["seed"] for b in samples) == [40, 41, 42]  # child i of n draws with seed + i
    assert all(b["n"] == 1 and b["max_tokens"] == 64 and b["messages"] == fan_out["messages"] for b in samples)
    # in seed order, whatever order the tasks finished in
    assert [c.text for c in out] == [verdict([s % 10 or 10, 1]) for s in (0, 1, 2)]
    assert all(c.tokens == 7 and c.error is None for c in out)


def test_one_sample_is_one_task_without_a_prefill_call():
    engine = Engine()
    LlamaCppBackend.on_engine(engine, parallel=4, model_id="m").generate(
        [GenerationRequest(PROMPT, n=1, seed=5)], Sampling()
    )
    assert [(b["n"], b["seed"]) for b in engine.bodies] == [(1, 5)]


def test_a_failed_sample_fails_alone_and_a_failed_prefill_fails_all():
    backend = LlamaCppBackend.on_engine(Engine(fail_seed=11), parallel=4, model_id="m")
    (out,) = backend.generate([GenerationRequest(PROMPT, n=3, seed=10)], Sampling())
    assert [c.error is None for c in out] == [True, False, True]
    assert "no slot" in out[1].error
    backend = LlamaCppBackend.on_engine(Engine(fan_out_error=True), parallel=4, model_id="m")
    (out,) = backend.generate([GenerationRequest(PROMPT, n=3, seed=10)], Sampling())
    assert len(out) == 3 and all(c.error and "boom" in c.error for c in out)


class Recording:
    """Wraps the real engine and keeps each reply's count of prompt tokens served from cache."""

    def __init__(self, server):
        self.server, self.replies = server, []

    def handle_chat_completions(self, body):
        out = self.server.handle_chat_completions(body)
        self.replies.append((body, out))
        return out


@pytest.mark.slow
def test_forced_verdicts_continue_each_sample_in_its_slot():
    """Every one of k samples cut by its budget is forced from the slot it was drawn in: the
    verdict's prompt (conversation + sample + `Scores: \\boxed{`) comes from cache but for a few
    tokens, instead of prefilling the sample again (what child tasks cost before)."""
    from rewardscale import GRM, JudgeConfig, models
    from rewardscale.types import Sampling as S
    from rewardscale.types import Status

    real = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=4, ctx_per_slot=1024)
    engine = Recording(real._server)
    backend = LlamaCppBackend.on_engine(engine, parallel=4, model_id=real.model_id)
    try:
        grm = GRM(backend, JudgeConfig(sampling=S(max_tokens=48), force_verdict=True, max_retries=0, seed=3))
        reward = grm.score("What is 17*23?", ["391", "401"], k=4)
    finally:
        real.close()
    forced = [j for j in reward.samples if j.status is Status.FORCED]
    verdicts = [(b, out) for b, out in engine.replies if "grammar" in b]
    assert len(forced) >= 3 and len(verdicts) == len([j for j in reward.samples if j.status is not Status.OK])
    for _, out in verdicts:
        usage = out["usage"]
        uncached = usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
        assert uncached <= 12, usage  # "Scores: \boxed{" and a token or two of re-tokenized boundary
