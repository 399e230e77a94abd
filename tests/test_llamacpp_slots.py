"""k samples of one prompt on the embedded engine: one prefill, then each sample a task of its own,
so that its verdict pass finds it in its slot (llama.cpp keeps only a parent task's tokens)."""

from __future__ import annotations

import threading
import time

import pytest

from rewardscale.backends.base import GenerationRequest
from rewardscale.backends.llamacpp import LlamaCppBackend
from rewardscale.backends.slots import MIN_SHARED_CHARS, SlotBudget, shared_prefix
from rewardscale.types import Sampling

from .fakes import verdict

PROMPT = ({"role": "user", "content": "Judge these."},)


class Engine:
    """Stands in for xllamacpp's Server: records bodies; `fail_seed` answers an error for that seed."""

    def __init__(self, fail_seed: int | None = None, fan_out_error: bool = False):
        self.bodies: list[dict] = []
        self.fail_seed, self.fan_out_error = fail_seed, fan_out_error
        self.in_flight = self.peak = 0  # sampling tasks (each takes a slot) at once
        self.lock = threading.Lock()

    def handle_chat_completions(self, body):
        with self.lock:
            self.bodies.append(body)
        if body["n"] > 1 and self.fan_out_error:
            return {"error": {"code": 500, "message": "boom"}}
        if body["seed"] == self.fail_seed and body["n"] == 1:
            return {"error": {"code": 500, "message": "no slot"}}
        if body["max_tokens"] > 1:  # a sample, not a prefill: holds its slot for a while
            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            time.sleep(0.005)
            with self.lock:
                self.in_flight -= 1
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
    assert backend._budget.free == 4  # its slots are given back


class Raising(Engine):
    def handle_chat_completions(self, body):
        if body["n"] > 1:
            raise RuntimeError("engine gone")
        return super().handle_chat_completions(body)


def test_a_prefill_that_raises_fails_its_request_and_gives_its_slots_back():
    backend = LlamaCppBackend.on_engine(Raising(), parallel=4, model_id="m")
    (out,) = backend.generate([GenerationRequest(PROMPT, n=4, seed=10)], Sampling())
    assert len(out) == 4 and all("engine gone" in c.error for c in out)
    assert backend._budget.free == 4
    (again,) = backend.generate([GenerationRequest(PROMPT, n=1, seed=10)], Sampling())  # not stuck
    assert again[0].error is None


TEMPLATE = "Judge each response by the criteria below. " * 10  # the part every GRM prompt shares


def chat(query: str) -> tuple[dict, ...]:
    return ({"role": "system", "content": "You are a judge."}, {"role": "user", "content": TEMPLATE + query})


def test_no_more_samples_in_flight_than_slots():
    engine = Engine()
    backend = LlamaCppBackend.on_engine(engine, parallel=4, model_id="m")
    requests = [GenerationRequest(chat(f"q{i}"), n=n, seed=10 * i) for i, n in enumerate([2, 3, 1, 2, 4, 2, 9])]
    out = backend.generate(requests, Sampling(max_tokens=32))
    assert [len(c) for c in out] == [r.n for r in requests]
    assert 1 < engine.peak <= 4  # together, never over: 23 samples, 4 slots
    nine = [b for b in engine.bodies if b["messages"][1]["content"].endswith("q6")]
    assert sorted(b["n"] for b in nine if b["max_tokens"] == 1) == [4, 4]  # 9 samples: 4 + 4 + 1, a prefill for each 4
    assert sorted(b["seed"] for b in nine if b["max_tokens"] > 1) == list(range(60, 69))
    assert backend._budget.free == 4


def test_the_prefix_a_call_shares_is_prefilled_once_for_its_slots():
    engine = Engine()
    backend = LlamaCppBackend.on_engine(engine, parallel=4, model_id="m")
    requests = [GenerationRequest(chat(q), n=1, seed=1) for q in ("What is 2+2?", "What is 3+3?", "Name one.")]
    backend.generate(requests, Sampling(max_tokens=32))
    first = engine.bodies[0]
    assert (first["n"], first["max_tokens"]) == (3, 1)  # as many slots as the call fills
    assert first["messages"] == [chat("")[0], {"role": "user", "content": TEMPLATE}]
    assert len(engine.bodies) == 4
    backend.generate(requests[:2], Sampling(max_tokens=32))  # the slots hold "What is " already
    assert len(engine.bodies) == 4 + 1 + 2 and engine.bodies[4]["messages"][1]["content"] == TEMPLATE + "What is "
    backend.generate(requests[:2], Sampling(max_tokens=32))
    assert len(engine.bodies) == 7 + 2  # the same prefix again: no new prefill


def test_shared_prefix_is_what_every_chat_starts_with():
    a, b = chat("What is 2+2?"), chat("What is 3+3?")
    assert shared_prefix([a, b, a]) == [a[0], {"role": "user", "content": TEMPLATE + "What is "}]
    assert shared_prefix([a, a]) is None  # one prompt: its n children share it already
    assert shared_prefix([a]) is None and shared_prefix([]) is None
    short = [({"role": "user", "content": "x" * (MIN_SHARED_CHARS - 2) + t},) for t in ("ab", "cd")]
    assert shared_prefix(short) is None  # not worth a call
    other_system = ({"role": "system", "content": "Another."}, a[1])
    assert shared_prefix([a, other_system]) is None
    longer = (*a, {"role": "assistant", "content": "Scores:"})
    assert shared_prefix([a, longer]) == list(a)


def test_slot_budget_takes_at_once_and_never_more_than_it_has():
    budget = SlotBudget(3)
    budget.take(2)
    taken = threading.Event()
    t = threading.Thread(target=lambda: (budget.take(2), taken.set()), daemon=True)
    t.start()
    assert not taken.wait(0.05)  # 1 free: waits for both
    budget.give(1)
    assert taken.wait(2)
    budget.give(3)  # the thread's 2 and ours
    budget.take(10)  # more than there are: all of them
    assert budget.free == 0
    budget.give(5)
    assert budget.free == 3
    with pytest.raises(ValueError):
        SlotBudget(0)


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
