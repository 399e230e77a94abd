"""A lean HTTP/1.1 client for plain-http OpenAI-compatible servers: the hot path of
`OpenAIBackend` (a vLLM/SGLang/llama.cpp fleet on a cluster network).

Keep-alive connections per host (opened on demand; how many are in use at once is bounded by the
caller's semaphore), one POST at a time per connection, reply bodies by Content-Length, chunked,
or to the end of the connection (HTTP/1.0), gzip/deflate decoded if a server sends them anyway
(none is asked for). A connection the server closed while it sat idle is dropped before reuse,
and a reused one that closes before the first byte of a reply is tried once more on a new one.
No timeouts here: the caller bounds each whole attempt (`OpenAIBackend._post`); a cancelled
request closes its connection, so the server sees the client go.

Why not httpx here: on a small machine httpx/httpcore cost about 2.5 ms of CPU per request
(its pool scans every connection and request on each state change, checks an idle socket's
readability through anyio on every reuse, and without `sniffio` installed each lock it sets up
repeats a failed import over sys.path), against about 0.1 ms for this; a fleet answering in
10 ms then waits on the client. httpx stays for https, proxies and injected transports
(`OpenAIBackend._use_lean`).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..errors import RewardscaleError

HEAD_LIMIT = 1 << 20  # bytes of reply headers (and of one chunk-size line) before giving up


class ConnectError(RewardscaleError, OSError):
    """Nothing to connect to at that address (refused, unresolvable, unreachable)."""


class TransportError(RewardscaleError, OSError):
    """The connection broke, or what came back is not an HTTP reply."""


class _NoReply(RewardscaleError):
    """The connection closed before the first byte of a reply."""


def target(url: str) -> tuple[tuple[str, int], str, str]:
    """((host, port), request path with query, Host header) of an http:// URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not a plain http:// URL: {url!r}")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return (host, port), path, shown if port == 80 else f"{shown}:{port}"


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        """Still open (an idle connection the server closed has seen its EOF)."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections per (host, port). One event loop; `close()` when done."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._targets: dict[str, tuple[tuple[str, int], str, str]] = {}
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """POST `body` (JSON) to `url`; (status, reply body). ConnectError, TransportError."""
        where = self._targets.get(url)
        if where is None:
            where = self._targets[url] = target(url)
        key, path, host = where
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rewardscale\r\nAccept: application/json\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        message = head.encode("latin-1") + body
        conn = self._take(key)
        reused = conn is not None
        if conn is None:
            conn = await self._open(key)
        try:
            try:
                status, content, keep = await self._exchange(conn, message)
            except _NoReply:
                conn.close()
                if not reused:
                    raise TransportError("the server closed the connection without a reply") from None
                conn = await self._open(key)  # a kept-alive connection the server had just closed
                try:
                    status, content, keep = await self._exchange(conn, message)
                except _NoReply:
                    raise TransportError("the server closed the connection without a reply") from None
        except BaseException:
            conn.close()  # also on cancellation: the server sees the client go
            raise
        if keep and not self._closed:
            self._idle.setdefault(key, []).append(conn)
        else:
            conn.close()
        return status, content

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
            conn.close()
        return None

    async def _open(self, key: tuple[str, int]) -> _Conn:
        try:
            reader, writer = await asyncio.open_connection(key[0], key[1], limit=HEAD_LIMIT)
        except OSError as e:  # refused, unreachable, name not resolved (socket.gaierror)
            raise ConnectError(str(e) or type(e).__name__) from e
        return _Conn(reader, writer)

    async def _exchange(self, conn: _Conn, message: bytes) -> tuple[int, bytes, bool]:
        try:
            conn.writer.write(message)
            await conn.writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            raise _NoReply from None
        except OSError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from e
        return await read_reply(conn.reader)

    def close(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may be reused) of one HTTP/1.x reply."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial:
                raise _NoReply from None
            raise TransportError("the connection closed in the middle of the reply headers") from None
        except asyncio.LimitOverrunError:
            raise TransportError(f"reply headers longer than {HEAD_LIMIT} bytes") from None
        except ConnectionResetError:
            raise _NoReply from None  # reset before the reply's headers were complete: nothing was answered
        except OSError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from e
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            status = 0
        if not version.startswith("HTTP/1.") or status < 100:
            raise TransportError(f"not an HTTP/1.x reply: {lines[0][:80]!r}")
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                name, value = name.strip().lower(), value.strip()
                fields[name] = f"{fields[name]}, {value}" if name in fields else value
        if status >= 200:
            break  # 1xx (100 Continue, 103 Early Hints): another head follows
    connection = fields.get("connection", "").lower()
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    try:
        if status in (204, 304):
            body = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            body = await _chunked(reader)
        elif "content-length" in fields:
            try:
                length = int(fields["content-length"].split(",")[0])
            except ValueError:
                raise TransportError(f"bad Content-Length {fields['content-length']!r}") from None
            body = await reader.readexactly(length)
        else:  # delimited by the end of the connection
            body = await reader.read()
            keep = False
    except asyncio.IncompleteReadError:
        raise TransportError("the connection closed before the end of the reply body") from None
    except asyncio.LimitOverrunError:
        raise TransportError("a chunk-size line is too long") from None
    except TransportError:
        raise
    except OSError as e:
        raise TransportError(f"{type(e).__name__} reading the reply body: {e}") from e
    encoding = fields.get("content-encoding", "identity").lower()
    if encoding not in ("", "identity"):
        body = _decode(body, encoding)
    return status, body, keep


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise TransportError(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the empty line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _decode(body: bytes, encoding: str) -> bytes:
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error as e:
        raise TransportError(f"cannot decode a {encoding} reply body: {e}") from None
    raise TransportError(f"a reply body in an encoding that was not asked for: {encoding!r}")
