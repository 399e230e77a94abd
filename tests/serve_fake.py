"""Test-only launcher: the real reward server (uvicorn, HTTP on loopback) around a scripted fake
judge, so server tests run the real process without a model.

    python -m tests.serve_fake --port 8123 [--gate FILE] [--max-queue 2] [--max-batch 1] ...
    python -m tests.serve_fake --port 8123 --meta-rm DIR [--k-meta 1]   # MetaRM@k, a real meta RM

--gate FILE: every backend call waits until FILE exists (lets a test hold the worker busy and
fill the queue). A response containing "BOOM" makes the backend call raise (a poisoned request);
one containing "GARBAGE" gets no verdict (parse failures).
"""

from __future__ import annotations

import argparse
import os
import time

from rewardscale import GRM
from rewardscale.serve import ServerConfig, run

from .fakes import FakeBackend, length_judge


def judge(shown: list[str], seed: int, i: int) -> str:
    """The length judge, except that a response containing GARBAGE makes it answer with no verdict."""
    if any("GARBAGE" in s for s in shown):
        return "I would rather not say."
    return length_judge(shown, seed, i)


class GatedBackend(FakeBackend):
    def __init__(self, gate: str | None):
        super().__init__(judge)
        self.gate = gate

    def generate(self, requests, sampling, progress=None):
        while self.gate and not os.path.exists(self.gate):
            time.sleep(0.01)
        if any("BOOM" in m["content"] for r in requests for m in r.messages):
            raise RuntimeError("the fake judge exploded on BOOM")
        return super().generate(requests, sampling, progress)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--gate")
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=10)
    p.add_argument("--max-queue", type=int, default=4096)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--max-responses", type=int, default=8)
    p.add_argument("--max-chars", type=int, default=2000)
    p.add_argument("--max-k", type=int, default=16)
    p.add_argument("--meta-rm")
    p.add_argument("--k-meta", type=int)
    a = p.parse_args()
    meta_rm = None
    if a.meta_rm:
        import torch

        from rewardscale.metarm import MetaRM

        torch.set_num_threads(1)
        meta_rm = MetaRM.load(a.meta_rm, device="cpu")
    config = ServerConfig(
        k=a.k,
        max_k=a.max_k,
        k_meta=a.k_meta,
        max_batch=a.max_batch,
        max_wait_ms=a.max_wait_ms,
        max_queue=a.max_queue,
        timeout_s=a.timeout,
        max_responses=a.max_responses,
        max_chars=a.max_chars,
        max_body_bytes=100_000,
    )
    grm = GRM(GatedBackend(a.gate), max_retries=0)
    run(grm, config, host="127.0.0.1", port=a.port, log_level="warning", meta_rm=meta_rm)


if __name__ == "__main__":
    main()
