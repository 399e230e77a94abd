"""Backends: OpenAI-compatible retries/URLs (a mock upstream on loopback), and real engines end to end."""

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rewardscale import GRM, Sampling, Status
from rewardscale.backends import BackendError, GenerationRequest, make_backend
from rewardscale.backends.openai_http import OpenAIBackend

ROOT = Path(__file__).resolve().parents[1]
REQ = GenerationRequest(messages=({"role": "user", "content": "hi"},), n=3, seed=7)


def _choice(i, text="Scores: \\boxed{5}"):
    return {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}


def test_openai_retries_on_429_and_5xx_then_succeeds(mock_upstream):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((str(request.url), body))
        if len(seen) <= 2:
            return httpx.Response(429 if len(seen) == 1 else 503, text="busy")
        return httpx.Response(200, json={"choices": [_choice(i) for i in range(body["n"])], "usage": {}})

    base = mock_upstream(handler)
    b = OpenAIBackend([f"{base}/a/v1", f"{base}/b/v1/"], model="m", backoff=0.001)
    out = b.generate([REQ], Sampling(temperature=0.3, max_tokens=50))
    assert [c.text for c in out[0]] == ["Scores: \\boxed{5}"] * 3
    urls = [u for u, _ in seen]
    assert urls[0] == f"{base}/a/v1/chat/completions" and urls[1] == f"{base}/b/v1/chat/completions"
    body = seen[-1][1]
    assert body["n"] == 3 and body["seed"] == 7 and body["temperature"] == 0.3 and body["max_tokens"] == 50
    assert body["model"] == "m" and body["messages"] == [{"role": "user", "content": "hi"}]


def test_openai_asks_again_when_server_ignores_n(mock_upstream):
    calls = []

    def handler(request):
        body = json.loads(request.content)
        calls.append(body)
        return httpx.Response(200, json={"choices": [_choice(0, f"seed {body['seed']}")]})

    out = OpenAIBackend(mock_upstream(handler) + "/v1", "m").generate([REQ], Sampling())
    assert [c.text for c in out[0]] == ["seed 7", "seed 8", "seed 9"]
    assert [c["n"] for c in calls] == [3, 2, 1]


def test_openai_client_errors_are_not_retried_and_all_failures_raise(mock_upstream):
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(400, json={"error": "bad model"})

    b = OpenAIBackend(mock_upstream(handler) + "/v1", "m")
    with pytest.raises(BackendError, match="HTTP 400"):
        b.generate([REQ], Sampling())
    assert len(calls) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_a_clear_fast_error():
    b = OpenAIBackend(f"http://127.0.0.1:{_free_port()}/v1", "m", backoff=0.01)
    t = time.monotonic()
    with pytest.raises(BackendError, match="cannot connect"):
        GRM(b).score("q", ["a", "b"], k=2)
    assert time.monotonic() - t < 30


def test_unknown_backend_and_missing_options():
    with pytest.raises(BackendError, match="unknown backend"):
        make_backend("nope")
    with pytest.raises(BackendError, match="base-url"):
        make_backend("openai", model="m")


@pytest.mark.slow
def test_openai_backend_end_to_end_against_real_llamacpp_server():
    """A real OpenAI-compatible server (llama.cpp's, fixture model) on loopback."""
    from rewardscale import models

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llamacpp_server", str(models.model_path(models.FIXTURE_MODEL)), str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 300)  # the model loads in seconds; a hang fails
        assert ready and proc.stdout.readline().startswith("READY")
        backend = make_backend("openai", base_url=[f"http://127.0.0.1:{port}/v1"], model="fixture")
        grm = GRM(backend, sampling=Sampling(max_tokens=96), max_retries=0)
        r = grm.score("What is 2+2?", ["4", "5"], k=4)
        assert len(r.samples) == 4
        assert all(j.text and j.status is not Status.BACKEND_ERROR for j in r.samples)
        assert r.rewards == [sum(j.scores[i] for j in r.samples if j.valid) for i in range(2)]
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_transformers_backend_on_fixture_model():
    from rewardscale import models

    backend = make_backend("transformers", model=models.FIXTURE_MODEL)
    out = backend.generate(
        [GenerationRequest(({"role": "user", "content": "Say hi."},), n=2, seed=1)], Sampling(max_tokens=16)
    )
    assert len(out) == 1 and len(out[0]) == 2
    assert all(c.text and 0 < c.tokens <= 16 and c.finish_reason in ("stop", "length") for c in out[0])
    r = GRM(backend, sampling=Sampling(max_tokens=24), max_retries=0).score("2+2?", ["4", "5"], k=2)
    assert len(r.samples) == 2 and all(j.text for j in r.samples)


@pytest.mark.slow
def test_llamacpp_counts_each_completions_tokens():
    """n completions of one prompt: every choice reports its own token count (llama.cpp's usage
    covers only the first), so throughput figures and the store's token column are right."""
    from rewardscale import models
    from rewardscale.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=3, ctx_per_slot=512)
    try:
        job = GenerationRequest(({"role": "user", "content": "Write a long poem about the sea."},), n=3, seed=3)
        out = backend.generate([job], Sampling(temperature=0.8, max_tokens=12))
    finally:
        backend.close()
    assert len(out[0]) == 3
    assert all(c.finish_reason == "length" and c.tokens == 12 for c in out[0])


@pytest.mark.slow
def test_llamacpp_a_prompt_longer_than_a_slot_is_a_clear_error():
    """Each slot has its own KV cache of ctx_per_slot tokens: a longer prompt fails alone, and
    its error names the setting to raise."""
    from rewardscale import models
    from rewardscale.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=2, ctx_per_slot=256, threads=1)
    try:
        long = GenerationRequest(({"role": "user", "content": "word " * 400},), n=1, seed=0)
        short = GenerationRequest(({"role": "user", "content": "Say hi."},), n=1, seed=0)
        out = backend.generate([long, short], Sampling(max_tokens=4))
    finally:
        backend.close()
    assert out[0][0].error and "--ctx-per-slot" in out[0][0].error and "256-token context" in out[0][0].error
    assert out[1][0].error is None and out[1][0].text
