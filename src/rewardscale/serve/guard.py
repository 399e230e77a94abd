"""The server's outer layer (plain ASGI middleware): the optional bearer token and the per-call
metrics. Plain ASGI rather than Starlette's BaseHTTPMiddleware, which hides a client's hang-up
from the endpoint (the server cancels a call whose client went away) and loses calls that raise."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from .metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def bearer_ok(headers: list[tuple[bytes, bytes]], token: bytes) -> bool:
    """Whether the headers carry `Authorization: Bearer <token>` (compared in constant time)."""
    given = next((v for k, v in headers if k.lower() == b"authorization"), b"")
    scheme, _, value = given.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), token)


class Guard:
    """Answers 401 to calls without the token (when one is set; `open_paths` need none), and
    records every call's endpoint, status code and latency, 500s from exceptions included."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        endpoints: Collection[str],
        token: str | None = None,
        open_paths: Collection[str] = (),
    ):
        self.app = app
        self.metrics = metrics
        self.endpoints = set(endpoints)
        self.token = (token or "").encode()
        self.open_paths = set(open_paths)

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        path = scope.get("path", "")
        endpoint = path if path in self.endpoints else "other"
        code = 500  # unless the app starts a response

        async def send_and_note(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            if self.token and path not in self.open_paths and not bearer_ok(scope.get("headers", []), self.token):
                await unauthorized(send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.http_call(endpoint, code, time.monotonic() - start)


async def unauthorized(send) -> None:
    body = json.dumps({"detail": "missing or wrong bearer token (Authorization: Bearer <token>)"}).encode()
    headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
