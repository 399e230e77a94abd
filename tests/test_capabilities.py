"""What a backend can do is one declared value (`Capabilities`), read the same way by the judge's
config check, the GRM's slot groups, the store and the server; a backend that declares nothing
is plain sampling."""

from __future__ import annotations

import pytest

from rewardscale import GRM
from rewardscale.backends.base import Capabilities, capabilities_of
from rewardscale.backends.openai_http import OpenAIBackend
from rewardscale.backends.transformers_hf import TransformersBackend
from rewardscale.config import ConfigError
from rewardscale.serve.batcher import DynamicBatcher
from rewardscale.store import SampleStore
from rewardscale.stored import StoredBackend
from rewardscale.verdict import can_constrain_format, can_force

from .fakes import FakeBackend


@pytest.mark.parametrize("constraint", ["none", "grammar", "vllm", "sglang"])
def test_openai_declares_what_its_server_constrains(constraint):
    caps = OpenAIBackend("http://127.0.0.1:9/v1", "m", concurrency=48, verdict_constraint=constraint).capabilities
    constrained = constraint != "none"
    assert (caps.verdicts, caps.constrained_generation, caps.verdict_constraint) == (
        constrained,
        constrained,
        constraint,
    )
    assert (caps.concurrency, caps.slots, caps.thread_safe, caps.reports_each) == (48, None, True, True)
    assert caps.continuation == constrained  # a named server kind continues an assistant prefix


def test_transformers_and_a_users_own_backend_are_plain_sampling():
    assert TransformersBackend.capabilities == Capabilities(continuation=True)  # no grammar, no verdicts
    plain = FakeBackend()
    assert capabilities_of(plain) == Capabilities() and not can_force(plain) and not can_constrain_format(plain)
    with pytest.raises(ConfigError, match=r"force_verdict needs .*FakeBackend \(verdict_constraint none\)"):
        GRM(plain, force_verdict=True)


def test_the_store_passes_the_engines_capabilities_through(tmp_path):
    engine = FakeBackend()
    engine.capabilities = Capabilities(constrained_generation=True, slots=4, concurrency=4, thread_safe=True)
    store = SampleStore(tmp_path / "s.sqlite")
    try:
        caps = StoredBackend(engine, store).capabilities
        assert caps == engine.capabilities
        reader = StoredBackend(None, store, model_id="fake").capabilities
        assert reader.verdicts and reader.constrained_generation and reader.continuation and not reader.thread_safe
    finally:
        store.close()


def test_the_server_runs_batches_side_by_side_only_for_a_thread_safe_backend():
    safe, unsafe = FakeBackend(), FakeBackend()
    safe.capabilities = Capabilities(thread_safe=True)
    assert DynamicBatcher(GRM(safe), workers=3).workers == 3
    assert DynamicBatcher(GRM(unsafe), workers=3).workers == 1
