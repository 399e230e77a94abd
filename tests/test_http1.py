"""The lean HTTP/1.1 client (backends/http1.py) against scripted loopback servers, and the
OpenAI backend's in-flight bound on it."""

import asyncio
import gzip
import json
import socket
import threading
import time

import httpx
import pytest

from rewardscale.backends import http1
from rewardscale.backends.base import GenerationRequest
from rewardscale.backends.openai_http import OpenAIBackend, encode
from rewardscale.types import Sampling

OK = b'{"choices": [{"index": 0, "message": {"content": "hi"}}]}'


def reply(body: bytes = OK, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % len(body) + headers + b"\r\n" + body


class Scripted:
    """A loopback server that reads one request at a time and answers with `answer(i, head)`
    (bytes, or None to close without a word); counts connections and requests."""

    def __init__(self, answer, close: bool = False):
        self.answer, self.close, self.connections, self.requests = answer, close, 0, 0

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                self.requests += 1
                out = self.answer(self.requests, head)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if self.close or b"HTTP/1.0" in out[:8]:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def with_server(answer, body, close=False):
    s = Scripted(answer, close)
    server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    pool = http1.Pool()
    try:
        return await body(pool, url), s
    finally:
        pool.close()
        server.close()


def run(answer, body, close=False):
    return asyncio.run(with_server(answer, body, close))


def test_keep_alive_chunked_eof_and_gzip_bodies():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"
    zipped = gzip.compress(OK)
    answers = {
        1: reply(),
        2: chunked,
        3: reply(zipped, headers=b"Content-Encoding: gzip\r\n"),
        4: b"HTTP/1.0 503 Busy\r\n\r\nupstream busy",  # no length: the body ends with the connection
        5: reply(b"", b"204 No Content"),
    }

    async def body(pool, url):
        return [await pool.post(url, b"{}", {"Authorization": "Bearer k"}) for _ in range(5)]

    out, s = run(lambda i, head: answers[i], body)
    assert out == [(200, OK), (200, b"hello world"), (200, OK), (503, b"upstream busy"), (204, b"")]
    assert s.connections == 2  # one kept alive for the first three, a new one after the HTTP/1.0 close


def test_a_kept_alive_connection_the_server_closed_is_replaced(monkeypatch):
    class Closer(Scripted):
        """Answers one request per connection and closes it, without saying so in the reply; with
        `read_next`, it first waits for the client's next request (which it never answers)."""

        def __init__(self, read_next: bool):
            super().__init__(None)
            self.read_next = read_next

        async def handle(self, reader, writer):
            self.connections += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(reply())
            await writer.drain()
            if self.read_next:
                await reader.read(1)
            writer.close()

    async def main(read_next: bool):
        c = Closer(read_next)
        server = await asyncio.start_server(c.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        pool = http1.Pool()
        try:
            out = [await pool.post(url, b"{}", {})]
            if read_next:  # the race: the request goes out before the close is seen
                monkeypatch.setattr(http1._Conn, "usable", lambda self: True)
            else:  # the close arrives while the connection is idle: it is dropped before reuse
                await asyncio.sleep(0.05)
            out.append(await pool.post(url, b"{}", {}))
            return out, c.connections
        finally:
            monkeypatch.undo()
            pool.close()
            server.close()

    for read_next in (False, True):
        assert asyncio.run(main(read_next)) == ([(200, OK), (200, OK)], 2)


@pytest.mark.parametrize(
    "answer, message",
    [
        (b"garbage\r\n\r\n", "not an HTTP/1.x reply"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "before the end of the reply body"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n\r\nhello", "cannot decode"),
        (None, "without a reply"),
    ],
)
def test_broken_replies_are_transport_errors(answer, message):
    async def body(pool, url):
        with pytest.raises(http1.TransportError, match=message):
            await pool.post(url, b"{}", {})

    run(lambda i, head: answer, body, close=True)  # each answer is all the server sends


def test_nothing_listening_is_a_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        pool = http1.Pool()
        with pytest.raises(http1.ConnectError):
            await pool.post(f"http://127.0.0.1:{port}/v1/chat/completions", b"{}", {})

    asyncio.run(main())


def test_a_cancelled_request_closes_its_connection():
    async def main():
        seen = {}

        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            await reader.read()  # to the end: returns once the client closes
            seen["eof"] = True
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
        pool = http1.Pool()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.post(url, b"{}", {}), 0.2)
        for _ in range(50):
            if "eof" in seen:
                break
            await asyncio.sleep(0.02)
        pool.close()
        server.close()
        return seen

    assert asyncio.run(main()) == {"eof": True}


def test_the_request_line_headers_and_body():
    heads = []

    async def body(pool, url):
        return await pool.post(url + "?a=1", encode({"x": "é"}), {"Authorization": "Bearer k"})

    out, _ = run(lambda i, head: heads.append(head) or reply(), body)
    head = heads[0].decode()
    assert head.startswith("POST /v1/chat/completions?a=1 HTTP/1.1\r\n")
    assert "\r\nAuthorization: Bearer k\r\n" in head and "\r\nContent-Type: application/json\r\n" in head
    assert f"\r\nHost: 127.0.0.1:{url_port(head)}\r\n" in head
    assert http1.target("http://[::1]/v1") == (("::1", 80), "/v1", "[::1]")


def url_port(head: str) -> str:
    return head.split("Host: 127.0.0.1:")[1].split("\r\n")[0]


def test_the_body_on_the_wire_is_what_httpx_json_sends():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "x"}}]})

    b = OpenAIBackend("http://x/v1", "m", transport=httpx.MockTransport(handler))
    assert not b.lean  # an injected transport is httpx's
    b.generate([GenerationRequest(messages=({"role": "user", "content": "é \u2028"},), n=1, seed=3)], Sampling())
    body = json.loads(seen[0])
    assert seen[0] == encode(body) == httpx.Request("POST", "http://x", json=body).content


class SlowFleet:
    """A loopback OpenAI-compatible server whose every answer takes `delay` seconds; it records
    how many requests it holds at once."""

    def __init__(self, delay: float = 0.05):
        self.delay, self.now, self.peak, self.requests, self.open = delay, 0, 0, 0, 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def handle(self, reader, writer):
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                n = json.loads(await reader.readexactly(length))["n"]
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
        assert b.lean
        jobs = [GenerationRequest(messages=({"role": "user", "content": f"q{i}"},), n=2, seed=i) for i in range(40)]
        start = time.monotonic()
        out = b.generate(jobs, Sampling())
        took = time.monotonic() - start
    assert [len(c) for c in out] == [2] * 40 and fleet.requests == 40
    assert fleet.peak == concurrency  # kept full, never over
    assert took < 0.05 * 40 / concurrency + 2.0


def test_a_request_waiting_for_its_retry_leaves_its_place_to_another():
    order = []

    def handler(request: httpx.Request) -> httpx.Response:
        who = json.loads(request.content)["messages"][0]["content"]
        order.append(who)
        if order.count("a") == 1 and who == "a":
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": who}}]})

    b = OpenAIBackend("http://x/v1", "m", concurrency=1, backoff=0.2, transport=httpx.MockTransport(handler))
    jobs = [GenerationRequest(messages=({"role": "user", "content": w},), n=1, seed=0) for w in "ab"]
    out = b.generate(jobs, Sampling())
    assert [c[0].text for c in out] == ["a", "b"] and order == ["a", "b", "a"]  # b went out during a's backoff
