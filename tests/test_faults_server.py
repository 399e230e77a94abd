"""Fault injection through `rewardscale serve --backend openai` (a real process) against a fake
OpenAI-compatible judge on loopback (tests/fake_upstream.py): a hung upstream call gets its 504
by its deadline while other calls are served, its upstream request is cancelled, /health says
degraded while the judge fails; bad 200 bodies are retried; 502 bodies carry no upstream detail;
the bearer token; bodies over the limit, chunked or not, are refused while being read."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .fake_upstream import FakeUpstream, Faults
from .server_proc import CLI, metric, server_process, wait_for

TOKEN = "s3cret-token-for-tests"


def serve_args(url: str, *extra: str, timeout: str = "3") -> list[str]:
    return [*CLI, "serve", "--backend", "openai", "--base-url", url, "--model", "fake", "-k", "2", "--max-retries", "0",
            "--timeout", timeout, "--upstream-timeout", "60", "--log-level", "warning", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def url(upstream):
    with server_process(serve_args(upstream.url, "--upstream-retries", "1")) as u:
        yield u


@pytest.fixture(scope="module")
def patient(upstream):
    """A server whose calls may wait 60 s: long enough for several retries with backoff."""
    with server_process(serve_args(upstream.url, "--upstream-retries", "8", timeout="60")) as u:
        yield u


@pytest.fixture(autouse=True)
def healthy_judge(upstream):
    upstream.faults = Faults()
    yield
    upstream.faults = Faults()


def call(url: str, response: str = "aaa", timeout: float = 30, **kw) -> httpx.Response:
    body = {"requests": [{"query": "q?", "responses": [response, "bb"]}]}
    return httpx.post(f"{url}/v1/score", json=body, timeout=timeout, **kw)


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()


def test_a_hung_upstream_call_gets_504_by_its_deadline_while_others_are_served(upstream, url):
    upstream.faults = Faults(hang=1.0, hang_s=20, only="HANG")
    gone = upstream.counts["client_gone"]
    with ThreadPoolExecutor(8) as pool:
        start = time.monotonic()
        hung = pool.submit(call, url, "HANG")
        time.sleep(0.3)
        others = [pool.submit(call, url, "a" * n) for n in range(1, 7)]
        answered = [f.result() for f in others]
        others_s = time.monotonic() - start
        r = hung.result()
        hung_s = time.monotonic() - start
    assert [a.status_code for a in answered] == [200] * 6, [a.text for a in answered]
    assert others_s < 2.9, "the other calls did not wait for the hung one"
    assert r.status_code == 504 and "timeout of 3s" in r.json()["detail"]
    assert 2.9 < hung_s < 6, "answered by its deadline, not when the upstream gave up (20 s)"
    wait_for(lambda: upstream.counts["client_gone"] > gone, "the hung upstream request to be cancelled", 5)
    assert metric(url, "rewardscale_upstream_cancelled_total") >= 1


def test_health_is_degraded_while_the_judge_fails_and_ok_again_after(upstream, url):
    upstream.faults = Faults(hang=1.0, hang_s=20)
    with ThreadPoolExecutor(4) as pool:
        assert [r.status_code for r in pool.map(lambda _: call(url), range(4))] == [504] * 4
    wait_for(lambda: health(url)["status"] == "degraded", "/health to say degraded", 10)
    body = health(url)
    assert body["upstream"]["state"] == "failing" and body["upstream"]["recent_failed"] >= 4
    upstream.faults = Faults()
    for _ in range(20):
        assert call(url).status_code == 200
        if health(url)["status"] == "ok":
            break
    assert health(url)["status"] == "ok"


def test_bad_200_bodies_and_dropped_connections_are_retried(upstream, patient):
    url = patient
    upstream.faults = Faults(malformed=0.2, close=0.05, error=0.05, seed=11)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda n: call(url, "a" * (1 + n % 9), timeout=90), range(16)))
    assert [r.status_code for r in replies] == [200] * 16
    assert all(r.json()["results"][0]["n_valid"] == 2 for r in replies)
    assert upstream.counts["malformed"] > 0
    text = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'rewardscale_upstream_retries_total{reason="malformed"}' in text


def test_a_502_names_no_upstream_detail(upstream, url):
    upstream.faults = Faults(error=1.0)
    r = call(url)
    assert r.status_code == 502
    detail = r.json()["detail"]
    assert "error id" in detail and "127.0.0.1" not in detail and "fake judge" not in detail
    ref = detail.split("error id ")[1].split(";")[0]
    wait_for(lambda: ref in url.log(), "the error id in the server log", 5)
    line = next(x for x in url.log().splitlines() if ref in x)
    assert "HTTP 500" in line and "the fake judge failed" in line, "the details are in the log"


def test_a_client_that_hangs_up_cancels_its_call(upstream, url):
    upstream.faults = Faults(hang=1.0, hang_s=20)
    gone = upstream.counts["client_gone"]
    with pytest.raises(httpx.ReadTimeout):
        call(url, timeout=1)
    disconnects = 'rewardscale_rejected_requests_total{reason="client_disconnected"}'
    wait_for(lambda: metric(url, disconnects, default=0) >= 1, "the disconnect counted", 5)
    wait_for(lambda: upstream.counts["client_gone"] > gone, "its upstream request cancelled", 5)
    assert "Traceback" not in url.log()


def test_bad_input_is_a_400_counted_in_metrics(url):
    deep = b'{"requests": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = httpx.post(f"{url}/v1/score", content=deep, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]
    r = httpx.post(f"{url}/v1/score", content=b'{"requests": [{"query": "\\ud800", "responses": ["a"]}]}', timeout=30)
    assert r.status_code == 400 and "surrogate" in r.json()["detail"]
    empty = [{"role": "user", "content": "q"}] + [{"role": "assistant", "content": ""}] * 2000
    r = httpx.post(f"{url}/v1/score", json={"requests": [{"messages": empty, "responses": ["a"]}]}, timeout=30)
    assert r.status_code == 400 and "2001 messages" in r.json()["detail"]
    assert metric(url, 'rewardscale_http_requests_total{endpoint="/v1/score",code="400"}') >= 3
    assert health(url)["status"] in ("ok", "degraded")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(url):
    """300 MB in chunks against the 32 MiB limit: 413 once the limit is passed, memory bounded."""
    before = rss_kib(url.pid)
    host, port = url.removeprefix("http://").split(":")
    chunk = b"x" * (1 << 20)
    sent, status = 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        s.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 300 * (1 << 20):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(30)
        try:
            status = s.recv(200)
        except ConnectionResetError:
            status = b""
    assert sent < 300 * (1 << 20) or status.startswith(b"HTTP/1.1 413"), "refused before all of it was sent"
    if status:
        assert status.startswith(b"HTTP/1.1 413")
    assert rss_kib(url.pid) - before < 120 * 1024, "the body was never held whole"
    assert call(url).status_code == 200, "the server keeps serving"


def test_the_bearer_token(upstream):
    env = dict(os.environ, REWARDSCALE_API_TOKEN=TOKEN)
    with server_process(serve_args(upstream.url), env=env) as u:
        assert call(u).status_code == 401
        assert call(u, headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = call(u, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["results"][0]["n_valid"] == 2
        assert httpx.get(f"{u}/health", timeout=10).status_code == 200, "liveness probes need no token"
        assert httpx.get(f"{u}/metrics", timeout=10).status_code == 401
        for page in ("/docs", "/redoc", "/openapi.json"):
            assert httpx.get(f"{u}{page}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 404
        assert TOKEN not in u.log()
