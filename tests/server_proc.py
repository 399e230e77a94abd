"""Start a real reward server process on loopback for a test and stop it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLI = ["-c", "from rewardscale.cli import app; app()"]  # `rewardscale ...` with this interpreter


class ServerURL(str):
    """The server's base URL, also carrying its process id (for memory checks) and its log."""

    pid: int = 0
    log: Callable[[], str] = staticmethod(lambda: "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_process(args: Sequence[str], startup_s: float = 120.0, env: dict | None = None) -> Iterator[ServerURL]:
    """Run `python <args> --port P` from the repo root; yield its base URL once /health answers.

    `args` is e.g. ["-m", "tests.serve_fake", "--gate", path] or [CLI, "serve", ...].
    """
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, *args, "--port", str(port)], cwd=ROOT, stdout=log, stderr=log, env=env)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid

    def output(tail: int = 3000) -> str:
        # pread: the server writes through the same file offset, which a seek would move
        return os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0).decode(errors="replace")[-tail:]

    url.log = lambda: output(200_000)

    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {output()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer /health within {startup_s}s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def wait_for(predicate, what: str, limit_s: float = 30.0, every_s: float = 0.02) -> None:
    """Poll until predicate() is true (state, not timing: the limit only stops a hung test)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every_s)


def metric(url: str, name: str, headers: dict | None = None, default: float | None = None) -> float:
    """The value of one unlabelled (or fully spelled-out labelled) series on /metrics; `default`
    (else KeyError) when the series is not there (yet)."""
    for line in httpx.get(f"{url}/metrics", headers=headers, timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    if default is not None:
        return default
    raise KeyError(name)
