"""The OpenAI backend's HTTP transport (aiohttp) against scripted loopback servers: the in-flight
bound, keep-alive connections the server closed, broken replies retried then given up on, and a
cancelled or timed-out request closing its connection."""

import asyncio
import json
import threading
import time

import httpx
import pytest

from rewardscale.backends.base import BackendError, GenerationRequest
from rewardscale.backends.openai_http import OpenAIBackend, encode
from rewardscale.types import Sampling

OK = b'{"choices": [{"index": 0, "message": {"content": "hi"}}]}'
BODY = {"model": "m", "messages": [{"role": "user", "content": "q"}], "n": 1}


def reply(body: bytes = OK, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % len(body) + headers + b"\r\n" + body


async def read_request(reader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


def job(i: int = 0, n: int = 1) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": f"q{i}"},), n=n, seed=i)


async def posting(backend: OpenAIBackend, handle, body):
    """Serve `handle` on loopback, point `backend` at it, and run `body(session, sem)` with one
    client session of the backend (its keep-alive connections shared, as within one call)."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    backend.base_urls = [f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"]
    try:
        async with backend._client() as session:
            return await body(session, asyncio.Semaphore(backend.concurrency))
    finally:
        server.close()


@pytest.mark.parametrize("race", [False, True])
def test_a_kept_alive_connection_the_server_closed_is_replaced(race):
    """The server answers one request per connection and closes it without saying so. Closed
    while idle, the connection is dropped before reuse (no retry); closed as the next request
    goes out (`race`: the server reads it, then closes), that request is retried on a new one."""
    connections = []

    async def handle(reader, writer):
        connections.append(1)
        await read_request(reader)
        writer.write(reply())
        await writer.drain()
        if race:
            await reader.read(1)
        writer.close()

    async def body(session, sem):
        out = [await b._post(session, sem, BODY)]
        if not race:
            await asyncio.sleep(0.05)  # the close arrives while the connection is idle
        out.append(await b._post(session, sem, BODY))
        return out

    b = OpenAIBackend("http://x/v1", "m", backoff=0.001)
    out = asyncio.run(posting(b, handle, body))
    assert out == [json.loads(OK)] * 2 and len(connections) == 2
    assert b.stats.retries == ({"transport": 1} if race else {})


@pytest.mark.parametrize(
    "answer, error",
    [
        (b"garbage\r\n\r\n", "ClientResponseError"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "ClientPayloadError"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n\r\nhello", "ClientPayloadError"),
        (b"", "ServerDisconnectedError"),  # closed without a word
    ],
)
def test_broken_replies_are_retried_then_given_up_on(answer, error):
    async def handle(reader, writer):
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def body(session, sem):
        with pytest.raises(BackendError, match=f"gave up after 3 attempts: {error} talking to http://127.0.0.1"):
            await b._post(session, sem, BODY)

    b = OpenAIBackend("http://x/v1", "m", max_retries=2, backoff=0.001)
    asyncio.run(posting(b, handle, body))
    assert b.stats.snapshot() == {"attempts": 3, "retries": {"transport": 2}, "gave_up": 1, "cancelled": 0}


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_cancelled_or_timed_out_request_closes_its_connection(how):
    seen = []

    async def handle(reader, writer):
        await read_request(reader)
        await reader.read()  # to the end: returns once the client closes
        seen.append("eof")
        writer.close()

    async def body(session, sem):
        if how == "cancel":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(b._post(session, sem, BODY), 0.2)
        else:
            with pytest.raises(BackendError, match=r"gave up after 1 attempts: no complete reply .* within 0.2s"):
                await b._post(session, sem, BODY)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)

    b = OpenAIBackend("http://x/v1", "m", timeout=0.2 if how == "timeout" else 60, max_retries=0)
    asyncio.run(posting(b, handle, body))
    assert seen == ["eof"]


def test_the_request_on_the_wire(mock_upstream):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "x"}}]})

    b = OpenAIBackend(mock_upstream(handler) + "/v1", "m", api_key="k")
    b.generate([GenerationRequest(messages=({"role": "user", "content": "é \u2028"},), n=1, seed=3)], Sampling())
    (r,) = seen
    body = json.loads(r.content)
    assert r.content == encode(body) == httpx.Request("POST", "http://x", json=body).content  # as httpx's json=
    assert r.url.path == "/v1/chat/completions" and r.headers["content-type"] == "application/json"
    assert r.headers["authorization"] == "Bearer k" and body["messages"][0]["content"] == "é \u2028"


def test_a_proxy_in_the_environment_is_used_unless_no_proxy_says_otherwise(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://user:pw@proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "gpu7")
    for name in ("http_proxy", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    b = OpenAIBackend(["http://gpu1:8000/v1", "http://gpu7:8000/v1", "https://api.example/v1"], "m")
    (proxy, auth), direct, https = b.proxies
    assert str(proxy) == "http://proxy.example:3128" and (auth.login, auth.password) == ("user", "pw")
    assert direct == https == (None, None)
    monkeypatch.setenv("HTTP_PROXY", "socks5://proxy.example:1080")
    with pytest.raises(BackendError, match="not an http:// proxy"):
        OpenAIBackend("http://gpu1:8000/v1", "m")


class SlowFleet:
    """A loopback OpenAI-compatible server whose every answer takes `delay` seconds; it records
    how many requests it holds at once and how many connections were opened."""

    def __init__(self, delay: float = 0.05):
        self.delay, self.now, self.peak, self.requests, self.open, self.connections = delay, 0, 0, 0, 0, 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def handle(self, reader, writer):
        self.open += 1
        self.connections += 1
        try:
            while True:
                n = json.loads((await read_request(reader)).split(b"\r\n\r\n", 1)[1])["n"]
                self.now += 1
                self.requests += 1
                self.peak = max(self.peak, self.now)
                await asyncio.sleep(self.delay)
                self.now -= 1
                choices = [{"index": i, "message": {"content": "Scores: \\boxed{5, 5}"}} for i in range(n)]
                writer.write(reply(json.dumps({"choices": choices}).encode()))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.open -= 1

    async def _stop(self):
        self.server.close()
        for _ in range(200):  # the client closed its connections: their handlers end
            if not self.open:
                break
            await asyncio.sleep(0.01)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self.handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_requests_in_flight_reach_and_never_pass_the_bound(concurrency):
    with SlowFleet(delay=0.05) as fleet:
        b = OpenAIBackend(f"http://127.0.0.1:{fleet.port}/v1", "m", concurrency=concurrency)
        start = time.monotonic()
        out = b.generate([job(i, n=2) for i in range(40)], Sampling())
        took = time.monotonic() - start
    assert [len(c) for c in out] == [2] * 40 and fleet.requests == 40
    assert fleet.peak == concurrency  # kept full, never over
    assert fleet.connections == concurrency  # kept alive and reused: the pool is the bound's size
    assert took < 0.05 * 40 / concurrency + 2.0


def test_a_request_waiting_for_its_retry_leaves_its_place_to_another(mock_upstream):
    order = []

    def handler(request: httpx.Request) -> httpx.Response:
        who = json.loads(request.content)["messages"][0]["content"]
        order.append(who)
        if order.count("a") == 1 and who == "a":
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": who}}]})

    b = OpenAIBackend(mock_upstream(handler) + "/v1", "m", concurrency=1, backoff=0.2)
    jobs = [GenerationRequest(messages=({"role": "user", "content": w},), n=1, seed=0) for w in "ab"]
    out = b.generate(jobs, Sampling())
    assert [c[0].text for c in out] == ["a", "b"] and order == ["a", "b", "a"]  # b went out during a's backoff
