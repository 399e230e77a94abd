"""A handler in `httpx.MockTransport`'s shape (an `httpx.Request` in, an `httpx.Response` out) served
by a real HTTP server on loopback, so that tests of the OpenAI backend go through its real client
(aiohttp) and the wire:

    def handler(request: httpx.Request) -> httpx.Response: ...

    def test_x(mock_upstream):
        base = mock_upstream(handler)           # "http://127.0.0.1:PORT"
        OpenAIBackend(base + "/v1", "m").generate(...)

An exception in the handler answers HTTP 400 (not retried) and is raised again when the test ends
(the `mock_upstream` fixture, tests/conftest.py), so an assertion inside a handler still fails
the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

Handler = Callable[[httpx.Request], httpx.Response]
HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


class MockUpstream:
    def __init__(self, handler: Handler):
        self.handler = handler
        self.errors: list[BaseException] = []
        mock = self

        class Http(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = f"http://{self.headers.get('Host', 'localhost')}{self.path}"
                request = httpx.Request("POST", url, headers=list(self.headers.items()), content=body)
                try:
                    response = mock.handler(request)
                    status, content = response.status_code, response.read()
                    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP]
                except BaseException as e:  # noqa: BLE001 - raised again in the test
                    mock.errors.append(e)
                    status, content, headers = 400, f"the mock handler raised {e!r}".encode(), []
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Http)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        if self.errors:
            raise self.errors[0]
