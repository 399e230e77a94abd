"""LlamaCppBackend.close is bounded: the engine is destroyed only after its task loop answered,
and a loop that never answers costs CLOSE_BARRIER_S, not a hung process (no model needed)."""

import gc
import threading
import time
import weakref

import pytest

from rewardscale.backends import llamacpp
from rewardscale.backends.llamacpp import LlamaCppBackend

METRICS = "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\nllamacpp:prompt_tokens_total 0\n"


class Engine:
    """Stands in for xllamacpp.Server: `handle_metrics` answers `answer`, or blocks until released."""

    def __init__(self, answer: str | None = METRICS):
        self.answer = answer
        self.release = threading.Event()
        self.asked = 0

    def handle_metrics(self) -> str:
        self.asked += 1
        if self.answer is None:
            self.release.wait(60)
            return METRICS
        return self.answer


def backend_with(engine) -> LlamaCppBackend:
    return LlamaCppBackend.on_engine(engine, parallel=2, model_id="fixture")  # no model: the engine is a fake


def closed(answer: str | None = METRICS) -> tuple[weakref.ref, float, threading.Event]:
    """Close a backend holding the only reference to an Engine(answer): the engine's weakref, the
    seconds close took, and the event that releases a blocked engine."""
    engine = Engine(answer)
    ref, release = weakref.ref(engine), engine.release
    backend = backend_with(engine)
    del engine
    start = time.monotonic()
    backend.close()
    took = time.monotonic() - start
    gc.collect()
    return ref, took, release


def test_close_destroys_the_engine_once_its_loop_answered():
    ref, took, _ = closed()
    assert ref() is None, "the engine was destroyed"
    assert took < 5


def test_close_never_waits_past_the_barrier_on_a_stuck_loop(monkeypatch, caplog):
    monkeypatch.setattr(llamacpp, "CLOSE_BARRIER_S", 0.3)
    ref, took, release = closed(answer=None)  # the task loop never answers
    try:
        assert took < 5, "close is bounded by the barrier"
        assert ref() is not None, "a stuck engine is kept, never destroyed (its destructor would hang)"
        assert "did not answer" in caplog.text
    finally:
        release.set()


def test_an_answer_from_outside_the_loop_is_no_proof(monkeypatch):
    """With /metrics disabled llama.cpp answers an error at once, without the loop: not a barrier."""
    ref, _, _ = closed('{"error": {"code": 501, "message": "This server does not support metrics endpoint."}}')
    assert ref() is not None


def test_close_twice_is_harmless():
    backend = backend_with(Engine())
    backend.close()
    backend.close()
    assert backend._server is None


def test_the_engine_is_built_with_the_metrics_endpoint_on(monkeypatch, tmp_path):
    """The barrier needs /metrics to go through the task loop, which llama.cpp does only with it on."""
    xlc = pytest.importorskip("xllamacpp")
    seen = {}

    class Server:
        def __init__(self, params):
            seen["metrics"] = params.endpoint_metrics

    monkeypatch.setattr(xlc, "Server", Server)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    LlamaCppBackend(model, parallel=1, ctx_per_slot=64)
    assert seen == {"metrics": True}
