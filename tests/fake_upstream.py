"""A fake OpenAI-compatible judge on loopback with fault knobs, for the fault-injection tests and
`benchmarks/fault_load.py`. It answers `POST /v1/chat/completions` with the length judge (longer
response, higher score) and, at the rates set in `Faults`, with a fault instead:

    error      HTTP 500
    hang       no answer for `hang_s` seconds (then a normal one, if the client is still there)
    malformed  HTTP 200 with a body that is not a chat completion (truncated JSON, an HTML page,
               a JSON list, choices as strings, no choices), in turn
    close      the connection closed without an answer
    slow       a normal answer whose body trickles in over `slow_s` seconds

    with FakeUpstream(Faults(error=0.1, seed=1)) as up:   # in process, on a thread
        run(["score", ..., "--base-url", up.url])
        up.faults = Faults(hang=1.0)                     # knobs change at any time
        up.counts["error"], up.delivered                  # what it did

    python -m tests.fake_upstream --port 8123 --error 0.05 --malformed 0.05   # its own process

`only` restricts faults to requests whose body contains that text (a poisoned request). Every
completion text names its prompt, seed and index, and `delivered` counts each (prompt, seed,
index) sent in a good 200 reply: a sample generated twice shows up there as a count of 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .fakes import RESPONSE_BLOCK, verdict

KINDS = ("error", "hang", "malformed", "close", "slow")
MALFORMED = ("truncated", "html", "list", "choices_strings", "no_choices")


@dataclass(frozen=True)
class Faults:
    """Fault rates (0..1, drawn per request in the order above; the rest are answered well)."""

    error: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0
    close: float = 0.0
    slow: float = 0.0
    hang_s: float = 30.0
    slow_s: float = 5.0
    only: str | None = None
    seed: int = 0

    def draw(self, rng: random.Random) -> str | None:
        """The fault for one request, or None."""
        x = rng.random()
        for kind in KINDS:
            rate = getattr(self, kind)
            if x < rate:
                return kind
            x -= rate
        return None


def judge_text(body: dict, seed: int, index: int) -> str:
    """The length judge's verdict on the prompt's responses, naming the draw it comes from."""
    prompt = body["messages"][-1]["content"]
    shown = [m.group(2) for m in RESPONSE_BLOCK.finditer(prompt)]
    scores = [max(1, min(10, len(s))) for s in shown] or [5]
    return verdict(scores).replace("Analysis:", f"Analysis: draw {prompt_id(body)}:{seed}:{index};", 1)


def prompt_id(body: dict) -> str:
    return hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()[:12]


class FakeUpstream:
    """The fake judge on 127.0.0.1 (a free port unless given), served from a daemon thread."""

    def __init__(self, faults: Faults | None = None, port: int = 0):
        self._lock = threading.Lock()
        self.faults = faults or Faults()
        self.counts: Counter[str] = Counter()  # ok, each fault kind, malformed:<kind>, client_gone
        self.delivered: Counter[tuple[str, int, int]] = Counter()
        self._malformed = 0
        self._stop = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                upstream._serve(self)

            def do_GET(self) -> None:  # GET /stats: what it did, for a benchmark in another process
                upstream._send(self, 200, json.dumps(upstream.stats()).encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-upstream", daemon=True)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """New knobs; the fault draws start again from their seed."""
        with self._lock:
            self._faults, self._rng = faults, random.Random(faults.seed)

    def stats(self) -> dict:
        """Counts by outcome, completions delivered, and how many were delivered more than once."""
        with self._lock:
            twice = sum(1 for n in self.delivered.values() if n > 1)
            return {"counts": dict(self.counts), "delivered": sum(self.delivered.values()), "delivered_twice": twice}

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    # --- one request ---

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        raw = h.rfile.read(int(h.headers.get("content-length") or 0))
        body = json.loads(raw)
        with self._lock:
            faults = self._faults
            kind = None if faults.only and faults.only not in raw.decode() else faults.draw(self._rng)
        self.count(kind or "ok")
        if kind == "error":
            return self._send(h, 500, b'{"error": {"message": "the fake judge failed"}}')
        if kind == "close":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "malformed":
            return self._malformed_reply(h)
        if kind == "hang" and not self._wait_while_connected(h, faults.hang_s):
            self.count("client_gone")
            return
        choices, keys = [], []
        for i in range(int(body.get("n", 1))):
            seed = int(body.get("seed", 0)) + i
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": judge_text(body, seed, i)},
                    "finish_reason": "stop",
                }
            )
            keys.append((prompt_id(body), seed, i))
        data = json.dumps({"choices": choices, "usage": {"completion_tokens": 10 * len(choices)}}).encode()
        try:
            if kind == "slow":
                sent = self._send_slowly(h, data, faults.slow_s)
            else:
                sent = self._send(h, 200, data) or True
        except (BrokenPipeError, ConnectionResetError):
            sent = False
        if not sent:
            self.count("client_gone")
            return
        with self._lock:
            self.delivered.update(keys)

    def _send(self, h: BaseHTTPRequestHandler, code: int, data: bytes, kind: str = "application/json") -> None:
        h.send_response(code)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _send_slowly(self, h: BaseHTTPRequestHandler, data: bytes, seconds: float) -> bool:
        """Headers at once, then the body in ten pieces over `seconds` (each read is quick, so only a
        bound on the whole attempt stops it). False if the client hung up before the end."""
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        step = max(1, len(data) // 10)
        for i in range(0, len(data), step):
            if not self._wait_while_connected(h, seconds / 10):
                return False
            h.wfile.write(data[i : i + step])
            h.wfile.flush()
        return True

    def _malformed_reply(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            which = MALFORMED[self._malformed % len(MALFORMED)]
            self._malformed += 1
        self.count(f"malformed:{which}")
        good = json.dumps({"choices": [{"index": 0, "message": {"content": "Scores: \\boxed{5, 5}"}}]})
        if which == "truncated":
            return self._send(h, 200, good[: len(good) // 2].encode())
        if which == "html":
            return self._send(h, 200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        if which == "list":
            return self._send(h, 200, b"[1, 2, 3]")
        if which == "choices_strings":
            return self._send(h, 200, b'{"choices": ["Scores: \\\\boxed{5, 5}"]}')
        return self._send(h, 200, b'{"choices": []}')

    def _wait_while_connected(self, h: BaseHTTPRequestHandler, seconds: float) -> bool:
        """Sleep `seconds` unless the client hangs up first (then False: the request was cancelled)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._stop.is_set():
                return False
            readable, _, _ = select.select([h.connection], [], [], min(left, 0.05))
            if readable and not h.connection.recv(1, socket.MSG_PEEK):
                return False
        return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    for kind in KINDS:
        p.add_argument(f"--{kind}", type=float, default=0.0, help=f"rate of {kind} faults")
    p.add_argument("--hang-s", type=float, default=30.0)
    p.add_argument("--slow-s", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    faults = Faults(**{k: getattr(a, k) for k in KINDS}, hang_s=a.hang_s, slow_s=a.slow_s, seed=a.seed)
    with FakeUpstream(faults, port=a.port) as up:
        print("READY", up.url, flush=True)
        try:
            while True:
                time.sleep(5)
                print("COUNTS", json.dumps(dict(up.counts)), flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
