"""A fake OpenAI-compatible GPU fleet on loopback, with a latency model and counters, for
`benchmarks/fleet_orchestration.py`.

Latency model of one `POST /v1/chat/completions`: it waits for one of `limit` slots (the
fleet's concurrency limit; requests beyond it queue, as on a vLLM/SGLang server at capacity),
then takes `prefill_ms` (one prefill per request: its `n` completions share it) plus `tokens` x
`decode_ms` (the n completions decode together, as one batch on a GPU). Without `n` support it
answers one choice per request, like Ollama. Each completion is the length judge's verdict.

Counters (GET /stats; POST /reset clears them, and with a body `{"limit": L}` sets a new limit):
requests, samples, prefills saved by `n` (sum of n - 1), max in flight, the time-weighted means
of requests in flight and of requests outstanding (in flight + queued: what the client keeps
sent) and the share of time the limit was full (all between the first request's arrival and the
last answer), queue peak, the fleet process's own CPU seconds, and the in-flight count sampled
every 50 ms.

    python benchmarks/fake_fleet.py --limit 16 --prefill-ms 2 --decode-ms 0.1 --tokens 64   # prints READY <port>

A raw asyncio HTTP/1.1 server (keep-alive, Content-Length bodies): cheap enough that the client,
not the fake, is what the benchmark measures on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import dataclass, field, replace

RESPONSE_BLOCK = re.compile(r"\[The Begin of Response (\d+)\]\\n(.*?)\\n\[The End of Response \1\]", re.S)


@dataclass(frozen=True)
class Fleet:
    """The latency model: concurrency limit, prefill per request, decode per token, tokens per
    completion, and whether `n` completions are served from one request."""

    limit: int = 16
    prefill_ms: float = 2.0
    decode_ms: float = 0.1
    tokens: int = 64
    n_support: bool = True

    def seconds(self) -> float:
        return (self.prefill_ms + self.tokens * self.decode_ms) / 1000

    def capacity(self) -> float:
        """Samples/s the fleet can serve at n completions per request: limit * n / latency (per n)."""
        return self.limit / self.seconds()


@dataclass
class Counters:
    """What the fleet received, updated on the event loop (one thread)."""

    requests: int = 0
    samples: int = 0
    prefills_saved: int = 0
    in_flight: int = 0
    queued: int = 0
    max_in_flight: int = 0
    max_queued: int = 0
    first: float | None = None
    last: float | None = None
    _since: float = 0.0
    area: float = 0.0  # integral of in_flight dt
    waiting: float = 0.0  # integral of (in_flight + queued) dt: what the client keeps outstanding
    full: float = 0.0  # time with in_flight == limit
    timeline: list[tuple[float, int, int]] = field(default_factory=list)
    cpu_start: float = field(default_factory=time.process_time)

    def step(self, now: float, limit: int) -> None:
        """Account the time since the last change at the current in-flight count."""
        if self.first is not None:
            dt = now - self._since
            self.area += self.in_flight * dt
            self.waiting += (self.in_flight + self.queued) * dt
            if self.in_flight >= limit:
                self.full += dt
        self._since = now

    def summary(self, fleet: Fleet) -> dict:
        span = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        return {
            "requests": self.requests,
            "samples": self.samples,
            "prefills_saved_by_n": self.prefills_saved,
            "max_in_flight": self.max_in_flight,
            "max_queued": self.max_queued,
            "limit": fleet.limit,
            "busy_seconds": span,
            "mean_in_flight": self.area / span if span else 0.0,
            "mean_outstanding": self.waiting / span if span else 0.0,
            "full_fraction": self.full / span if span else 0.0,
            "samples_per_s_server": self.samples / span if span else 0.0,
            "first_monotonic": self.first,  # time.monotonic() of the first arrival and last answer
            "last_monotonic": self.last,
            "cpu_s": time.process_time() - self.cpu_start,  # the fleet's own CPU since the reset
            "timeline": self.timeline,
        }


def verdict_text(prompt: str, index: int) -> str:
    """The length judge: each shown response scored by its length (1..10), in the GRM format."""
    shown = [m.group(2) for m in RESPONSE_BLOCK.finditer(prompt)] or ["x"]
    scores = ", ".join(str(max(1, min(10, len(s)))) for s in shown)
    return (
        f"Specific Criteria: correctness (70%), clarity (30%).\nAnalysis: draw {index}; the responses differ."
        f"\nScores: \\boxed{{{scores}}}"
    )


class FleetServer:
    """Serves the latency model on 127.0.0.1."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.counters = Counters()
        self.slots = asyncio.Semaphore(fleet.limit)

    async def sample_timeline(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            c = self.counters
            if c.first is not None:
                c.timeline.append((round(time.monotonic() - c.first, 3), c.in_flight, c.queued))

    async def completion(self, raw: bytes) -> bytes:
        """One chat completion: queue for a slot, sleep the latency model, answer n choices."""
        # the body is parsed only as far as needed: n and the last message's text (raw JSON escapes kept)
        n_match = re.search(rb'"n":\s*(\d+)', raw)
        n = int(n_match.group(1)) if n_match and self.fleet.n_support else 1
        c, now = self.counters, time.monotonic()
        if c.first is None:
            c.first = c._since = now
        c.step(now, self.fleet.limit)
        c.queued += 1
        c.max_queued = max(c.max_queued, c.queued)
        async with self.slots:
            c.queued -= 1
            c.step(time.monotonic(), self.fleet.limit)
            c.in_flight += 1
            c.max_in_flight = max(c.max_in_flight, c.in_flight)
            c.requests += 1
            c.samples += n
            c.prefills_saved += n - 1
            try:
                await asyncio.sleep(self.fleet.seconds())
            finally:
                c.step(time.monotonic(), self.fleet.limit)
                c.in_flight -= 1
                c.last = time.monotonic()
        text = raw.decode("utf-8", "replace")
        at = text.rfind('"content":')
        prompt = text[at:] if at >= 0 else ""
        choices = [
            {"index": i, "message": {"role": "assistant", "content": verdict_text(prompt, i)}, "finish_reason": "stop"}
            for i in range(n)
        ]
        reply = {"id": "fleet", "object": "chat.completion", "choices": choices}
        return json.dumps({**reply, "usage": {"completion_tokens": n * self.fleet.tokens}}).encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, _, rest = head.partition(b"\r\n")
                method, path = line.split(b" ")[:2]
                length = 0
                for h in rest.split(b"\r\n"):
                    if h[:15].lower() == b"content-length:":
                        length = int(h[15:])
                body = await reader.readexactly(length) if length else b""
                if method == b"POST" and path.endswith(b"/chat/completions"):
                    data = await self.completion(body)
                elif method == b"GET" and path == b"/stats":
                    data = json.dumps(self.counters.summary(self.fleet)).encode()
                elif method == b"POST" and path == b"/reset":  # body {"limit": L}: a new concurrency limit
                    limit = json.loads(body or b"{}").get("limit")
                    if limit:
                        self.fleet = replace(self.fleet, limit=int(limit))
                        self.slots = asyncio.Semaphore(self.fleet.limit)
                    self.counters = Counters()
                    data = b"{}"
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def serve(fleet: Fleet, port: int = 0) -> None:
    fs = FleetServer(fleet)
    server = await asyncio.start_server(fs.handle, "127.0.0.1", port, backlog=1024, limit=2**24)
    asyncio.ensure_future(fs.sample_timeline())
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--limit", type=int, default=16, help="requests served at once (the fleet's concurrency)")
    p.add_argument("--prefill-ms", type=float, default=2.0)
    p.add_argument("--decode-ms", type=float, default=0.1, help="per generated token")
    p.add_argument("--tokens", type=int, default=64, help="generated tokens per completion")
    p.add_argument("--no-n", action="store_true", help="answer one choice per request (a server without n)")
    a = p.parse_args()
    asyncio.run(serve(Fleet(a.limit, a.prefill_ms, a.decode_ms, a.tokens, not a.no_n), a.port))


if __name__ == "__main__":
    main()
