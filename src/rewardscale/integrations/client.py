"""HTTP client of the reward server's /v1/score (sync and async), used by the TRL and verl
integrations. Retries what is worth retrying (503 queue full, 502/504, connection errors) with
exponential backoff and jitter, a bounded number of times; a 4xx is the caller's bug and raises
at once with the server's message."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx

from ..errors import RewardscaleError
from ..types import Request

DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUS = {408, 429, 502, 503, 504}


class RewardServerError(RewardscaleError, RuntimeError):
    """The reward server refused the call or could not be reached (after retries)."""


def default_url() -> str:
    """`$REWARDSCALE_URL`, or the `rewardscale serve` default on this machine."""
    return os.environ.get("REWARDSCALE_URL", DEFAULT_URL)


def _body(
    requests: Sequence[Request | dict], k: int | None, return_samples: bool, k_meta: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"requests": [r.to_dict() if isinstance(r, Request) else r for r in requests]}
    if k is not None:
        body["k"] = k
    if k_meta is not None:
        body["k_meta"] = k_meta
    if return_samples:
        body["return_samples"] = True
    return body


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text


class RewardClient:
    """`RewardClient("http://host:8000").score(requests, k=4)` -> one result dict per request
    (`rewards`, `mean_scores`, `best`, `win_prob`, `n_valid`, ...; see `Reward.to_dict`).

    `k_meta` (MetaRM@k voters; only for a server started with --meta-rm, which otherwise uses its
    default) is sent when given.

    timeout: seconds per HTTP call (scoring a large batch on a slow judge takes minutes).
    retries: extra attempts for 408/429/5xx and connection errors, with backoff from `backoff_s`.
    """

    def __init__(self, url: str | None = None, timeout: float = 900.0, retries: int = 5, backoff_s: float = 0.5):
        self.url = (url or default_url()).rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self._client: httpx.Client | None = None
        self._aclients: dict[int, httpx.AsyncClient] = {}  # one per event loop (a client is bound to its loop)

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = response.headers.get("retry-after") if response is not None else None
        base = float(after) if after and after.replace(".", "", 1).isdigit() else self.backoff_s * 2**attempt
        return min(base, 30.0) * (0.5 + random.random())

    def _result(self, response: httpx.Response) -> list[dict[str, Any]]:
        if response.status_code != 200:
            raise RewardServerError(f"{self.url}/v1/score answered {response.status_code}: {_detail(response)}")
        return response.json()["results"]

    def score(
        self,
        requests: Sequence[Request | dict],
        k: int | None = None,
        return_samples: bool = False,
        k_meta: int | None = None,
    ) -> list[dict[str, Any]]:
        """Score requests on the server (blocking)."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        body = _body(requests, k, return_samples, k_meta)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client.post(f"{self.url}/v1/score", json=body)
            except httpx.TransportError as e:
                if last:
                    raise RewardServerError(f"cannot reach the reward server at {self.url}: {e}") from e
                time.sleep(self._delay(attempt, None))
                continue
            if response.status_code in RETRY_STATUS and not last:
                time.sleep(self._delay(attempt, response))
                continue
            return self._result(response)
        raise AssertionError("unreachable")

    async def ascore(
        self,
        requests: Sequence[Request | dict],
        k: int | None = None,
        return_samples: bool = False,
        k_meta: int | None = None,
    ) -> list[dict[str, Any]]:
        """Score requests on the server (async)."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._aclients:
            self._aclients[loop] = httpx.AsyncClient(timeout=self.timeout)
        client = self._aclients[loop]
        body = _body(requests, k, return_samples, k_meta)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await client.post(f"{self.url}/v1/score", json=body)
            except httpx.TransportError as e:
                if last:
                    raise RewardServerError(f"cannot reach the reward server at {self.url}: {e}") from e
                await asyncio.sleep(self._delay(attempt, None))
                continue
            if response.status_code in RETRY_STATUS and not last:
                await asyncio.sleep(self._delay(attempt, response))
                continue
            return self._result(response)
        raise AssertionError("unreachable")

    def health(self) -> dict[str, Any]:
        """GET /health (no retries): raises RewardServerError when the server is not up."""
        try:
            response = httpx.get(f"{self.url}/health", timeout=10)
        except httpx.TransportError as e:
            raise RewardServerError(f"cannot reach the reward server at {self.url}: {e}") from e
        if response.status_code != 200:
            raise RewardServerError(f"{self.url}/health answered {response.status_code}: {_detail(response)}")
        return response.json()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        # async clients belong to the event loops that made them; they close with their loops
        self._aclients.clear()
