"""The HTTP reward server: `create_app(grm, config)` builds the FastAPI app.

POST /v1/score     {requests: [{query|messages, responses, id?}], k?, k_meta?, return_samples?}
POST /get_reward   OpenRLHF's remote reward protocol
GET  /health       liveness, model, queue state; "degraded" while the upstream is stuck or failing
GET  /metrics      Prometheus text: calls, latency, batches, samples by status, queue depth, upstream

With `config.auth_token`, every endpoint but /health needs `Authorization: Bearer <token>` (401
without it); the OpenAPI pages are never served. Backend failures reach clients as a short
message with an error id; the upstream's URL and reply go to the server log under that id.

Bodies are validated before anything is queued (clear 4xx naming the field); scoring goes through
one DynamicBatcher, so concurrent calls share backend calls.

With a meta RM (`create_app(grm, config, meta_rm=MetaRM.load(DIR))`), every call on every endpoint
is scored with MetaRM@k: the call's `k_meta` (default `config.k_meta`, else k // 2; capped at the
call's k, `vote.k_meta_at`) top samples by the meta RM's q vote. Without one, a call naming `k_meta` gets 400.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect

from ..backends import BackendError
from ..errors import RewardscaleError
from ..grm import GRM, SampleScorer
from ..scales import scaled
from ..types import InvalidRequest, Request, Reward
from ..vote import k_meta_at
from . import openrlhf
from .batcher import DynamicBatcher, Expired, QueueFull
from .config import ServerConfig
from .guard import Guard
from .metrics import Metrics

SCORE_FIELDS = {"requests", "k", "k_meta", "return_samples"}
ENDPOINTS = {"/v1/score", "/get_reward", "/health", "/metrics"}
OPEN = {"/health"}  # answered without the token (liveness probes)
DISCONNECTED = 499  # nginx's code for a client that went away before the answer
log = logging.getLogger("rewardscale.serve")


class Disconnected(RewardscaleError):
    """The client closed the connection before its call was answered."""


def upstream_state(batcher: DynamicBatcher, timeout_s: float) -> dict[str, Any]:
    """How the judge upstream is doing: "stuck" (a backend call running past the call timeout),
    "failing" (the last 3 requests, or half or more of the last 20, got no judgment), else "ok"."""
    failed, of, streak = batcher.outcomes.failures()
    oldest = batcher.oldest_in_flight_s
    failing = streak >= 3 or (of >= 4 and 2 * failed >= of)
    state = "stuck" if oldest > timeout_s else "failing" if failing else "ok"
    return {
        "state": state,
        "recent_failed": failed,
        "recent": of,
        "failed_in_a_row": streak,
        "oldest_in_flight_s": round(oldest, 3),
    }


@dataclass
class ServerState:
    """What the handlers share (`app.state.server`): the judge, its batcher and metrics, the limits."""

    grm: GRM
    config: ServerConfig
    batcher: DynamicBatcher
    metrics: Metrics
    meta_rm: SampleScorer | None = None
    close_grm: bool = True
    started: float = field(default_factory=time.time)

    @property
    def model(self) -> str:
        return getattr(self.grm.backend, "model_id", type(self.grm.backend).__name__)

    @property
    def meta_name(self) -> str | None:
        return None if self.meta_rm is None else str(getattr(self.meta_rm, "path", type(self.meta_rm).__name__))


def create_app(
    grm: GRM, config: ServerConfig | None = None, close_grm: bool = True, meta_rm: SampleScorer | None = None
) -> FastAPI:
    """A reward server around `grm`. The batcher's worker starts with the app and stops (closing
    the GRM's backend when `close_grm`) when it shuts down. With `meta_rm`, every call is scored
    with MetaRM@k (see the module docstring). `config.judge`, when set, must be the settings
    `grm` was built with (the server reports them; it does not rebuild the judge)."""
    config = config or ServerConfig()
    if meta_rm is None and config.k_meta is not None:
        raise ValueError("k_meta needs a meta RM (MetaRM@k ranks the samples by the meta RM's q); none was given")
    if config.judge is not None and config.judge != grm.config:
        raise ValueError("config.judge differs from the settings the GRM was built with; build the GRM from it")
    metrics = Metrics()
    batcher = DynamicBatcher(
        grm,
        max_batch=config.max_batch,
        max_wait_s=config.max_wait_ms / 1000,
        max_queue=config.max_queue,
        metrics=metrics,
        meta_rm=meta_rm,
        workers=config.workers,
    )
    state = ServerState(grm, config, batcher, metrics, meta_rm, close_grm)
    _register_gauges(state)
    # no OpenAPI pages: they describe nothing a client needs and are open to anyone who can connect
    app = FastAPI(
        title="rewardscale reward server", lifespan=_lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.server = state
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.config = config
    app.add_middleware(Guard, metrics=metrics, endpoints=ENDPOINTS, token=config.auth_token, open_paths=OPEN)
    app.add_exception_handler(Disconnected, _disconnected)
    app.add_api_route("/v1/score", v1_score, methods=["POST"])
    app.add_api_route("/get_reward", get_reward, methods=["POST"])
    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"])
    return app


def _register_gauges(state: ServerState) -> None:
    metrics, batcher, config = state.metrics, state.batcher, state.config
    metrics.gauge("rewardscale_queue_depth", "GRM requests waiting in the queue.", lambda: batcher.depth)
    metrics.gauge("rewardscale_queue_capacity", "Most GRM requests the queue holds.", lambda: config.max_queue)
    metrics.gauge(
        "rewardscale_in_flight_requests", "GRM requests in the running backend call.", lambda: batcher.in_flight
    )
    metrics.gauge(
        "rewardscale_uptime_seconds", "Seconds since the server started.", lambda: time.time() - state.started
    )
    upstream = getattr(state.grm.backend, "stats", None)
    if upstream is not None and hasattr(upstream, "snapshot"):
        metrics.upstream(upstream.snapshot)


def _state(request: HTTPRequest) -> ServerState:
    return request.app.state.server


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.server
    state.batcher.start()
    yield
    state.batcher.stop()
    if state.close_grm:
        state.grm.close()


async def _disconnected(request: HTTPRequest, exc: Exception) -> Response:
    _state(request).metrics.reject("client_disconnected")
    return Response(status_code=DISCONNECTED)


async def read_json(request: HTTPRequest, limit: int) -> Any:
    """The body as JSON; 413 as soon as it is over `limit` bytes, whether it declares its length
    or arrives in chunks (it is never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"body of more than {limit} bytes is over the limit of {limit}")
            chunks.append(chunk)
    except ClientDisconnect as e:
        raise Disconnected() from e
    try:
        return json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HTTPException(400, f"malformed JSON body: {e}") from e
    except RecursionError as e:
        raise HTTPException(400, "malformed JSON body: nested too deeply") from e


def check_k(k: Any, config: ServerConfig) -> int:
    """The call's k: its own (an integer within the server's limit) or the server default."""
    if k is None:
        return config.k
    if isinstance(k, bool) or not isinstance(k, int):
        raise HTTPException(400, f"field 'k' must be an integer, got {json.dumps(k)}")
    if not 1 <= k <= config.max_k:
        raise HTTPException(400, f"field 'k' must be between 1 and {config.max_k} (server limit), got {k}")
    return k


def call_k_meta(k_meta: Any, k: int, state: ServerState) -> int | None:
    """The call's k_meta: None without a meta RM, else its own or the server default, capped at
    the call's k (`vote.k_meta_at`, the rule everywhere)."""
    if state.meta_rm is None:
        if k_meta is not None:
            raise HTTPException(400, "field 'k_meta' needs a meta RM (MetaRM@k); this server has none loaded")
        return None
    if k_meta is None:
        return state.config.meta_default(k)
    if isinstance(k_meta, bool) or not isinstance(k_meta, int):
        raise HTTPException(400, f"field 'k_meta' must be an integer, got {json.dumps(k_meta)}")
    if k_meta < 1:
        raise HTTPException(400, f"field 'k_meta' must be >= 1, got {k_meta}")
    return k_meta_at(k, k_meta)


def check_limits(requests: list[Request], where: str, config: ServerConfig) -> None:
    """413/400 for a call over the server's limits (requests per call, responses, messages, characters)."""
    limit = min(config.max_requests, config.max_queue)
    if len(requests) > limit:
        raise HTTPException(413, f"{len(requests)} requests in one call; the limit is {limit}")
    for i, r in enumerate(requests):
        if r.n > config.max_responses:
            raise HTTPException(400, f"{where}[{i}] has {r.n} responses; the limit is {config.max_responses}")
        if len(r.messages) > config.max_messages:
            raise HTTPException(400, f"{where}[{i}] has {len(r.messages)} messages; the limit is {config.max_messages}")
        chars = sum(len(m["content"]) for m in r.messages) + sum(map(len, r.responses))
        if chars > config.max_chars:
            raise HTTPException(
                400, f"{where}[{i}] has {chars} characters (query + responses); the limit is {config.max_chars}"
            )


def failed(what: str, e: BaseException) -> HTTPException:
    """A 502 that names an error id; the details (upstream URL, its reply) go to the log only."""
    ref = uuid.uuid4().hex[:12]
    log.error("error %s: %s: %s: %s", ref, what, type(e).__name__, e)
    return HTTPException(502, f"{what} (error id {ref}; the details are in the server log)")


async def wait(request: HTTPRequest, job: Any, timeout_s: float) -> list[Reward]:
    """The job's rewards, by the call's deadline; a client that hangs up cancels its job."""
    future = asyncio.wrap_future(job.future)
    end = time.monotonic() + timeout_s
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        done, _ = await asyncio.wait({future}, timeout=min(left, 0.5))
        if done:
            return future.result()
        if await request.is_disconnected():
            job.future.cancel()  # its queued work is dropped; a running batch ends early
            raise Disconnected()


async def score(request: HTTPRequest, requests: list[Request], k: int, k_meta: int | None) -> list[Reward]:
    """Queue the requests and wait for their rewards, mapping failures to HTTP errors."""
    state = _state(request)
    timeout_s = state.config.timeout_s
    try:
        job = state.batcher.submit(requests, k, timeout_s, k_meta=k_meta)
    except QueueFull as e:
        raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from e
    except RuntimeError as e:
        raise HTTPException(503, str(e)) from e
    try:
        return await wait(request, job, timeout_s)
    except (asyncio.TimeoutError, Expired) as e:
        job.future.cancel()  # nobody waits for it: the batcher drops it and cancels its upstream work
        state.metrics.reject("timeout", len(requests))
        raise HTTPException(504, f"not scored within the server's timeout of {timeout_s:g}s") from e
    except (Disconnected, asyncio.CancelledError):
        job.future.cancel()
        raise
    except BackendError as e:
        raise failed("the judge backend failed", e) from e
    except Exception as e:  # raised in the worker while scoring this call's requests alone
        raise failed("scoring failed", e) from e


def score_call(body: Any, state: ServerState) -> tuple[list[Request], int, int | None, bool]:
    """A /v1/score body -> (requests, k, k_meta, return_samples), or a 400/413 naming the field."""
    if not isinstance(body, dict):
        raise HTTPException(400, f"expected a JSON object, got {type(body).__name__}")
    unknown = set(body) - SCORE_FIELDS
    if unknown:
        raise HTTPException(400, f"unknown field(s) {sorted(unknown)}; accepted: {sorted(SCORE_FIELDS)}")
    items = body.get("requests")
    if not isinstance(items, list) or not items:
        raise HTTPException(400, "field 'requests' must be a non-empty list of {query|messages, responses}")
    k = check_k(body.get("k"), state.config)
    k_meta = call_k_meta(body.get("k_meta"), k, state)
    samples = body.get("return_samples", False)
    if not isinstance(samples, bool):
        raise HTTPException(400, "field 'return_samples' must be true or false")
    requests = []
    for i, item in enumerate(items):
        try:
            requests.append(Request.from_dict(item))
        except InvalidRequest as e:
            raise HTTPException(400, f"requests[{i}]: {e}") from e
    check_limits(requests, "requests", state.config)
    return requests, k, k_meta, samples


async def v1_score(request: HTTPRequest) -> JSONResponse:
    state = _state(request)
    requests, k, k_meta, samples = score_call(await read_json(request, state.config.max_body_bytes), state)
    rewards = await score(request, requests, k, k_meta)
    out: dict[str, Any] = {"model": state.model, "k": k}
    if k_meta is not None:
        out["k_meta"] = k_meta
    out["results"] = [r.to_dict(samples=samples, request=False) for r in rewards]
    return JSONResponse(out)


async def get_reward(request: HTTPRequest) -> JSONResponse:
    state = _state(request)
    config = state.config
    body = await read_json(request, config.max_body_bytes)
    try:
        call = openrlhf.parse_call(body)
        k = check_k(call.k, config)
        k_meta = call_k_meta(call.k_meta, k, state)
        grouped = openrlhf.to_requests(call, max_group=config.max_responses)
    except InvalidRequest as e:
        raise HTTPException(400, str(e)) from e
    check_limits(grouped.requests, "prompt group", config)
    results = [r.to_dict(samples=False, request=False) for r in await score(request, grouped.requests, k, k_meta)]
    return JSONResponse(openrlhf_answer(results, grouped.where, config))


def openrlhf_answer(
    results: list[dict[str, Any]], where: list[tuple[int, int]], config: ServerConfig
) -> dict[str, Any]:
    """OpenRLHF's reply: one reward per (request, position) in `where` (the call's order), on the
    server's scale, with the unit-scale score and GRM statistics in `extra_logs`."""
    chosen = [scaled(res, config.reward_scale) for res in results]  # type: ignore[arg-type]
    unit = [scaled(res, "unit") for res in results]
    rewards, scores, means, valid = [], [], [], []
    for ri, pos in where:
        r, u, m = chosen[ri][pos], unit[ri][pos], results[ri]["mean_scores"][pos]
        rewards.append(config.abstain_reward if r is None else r)
        scores.append(config.abstain_reward if u is None else u)
        means.append(0.0 if m is None else m)
        valid.append(results[ri]["n_valid"])
    extra = {"grm_mean_score": means, "grm_valid_samples": valid, "grm_abstained": [float(v == 0) for v in valid]}
    return {"rewards": rewards, "scores": scores, "extra_logs": extra}


async def health(request: HTTPRequest) -> JSONResponse:
    state = _state(request)
    config, batcher = state.config, state.batcher
    ok = batcher.alive
    judge = upstream_state(batcher, config.timeout_s)
    status = "worker stopped" if not ok else "ok" if judge["state"] == "ok" else "degraded"
    return JSONResponse(
        {
            "status": status,
            "upstream": judge,
            "model": state.model,
            "k": config.k,
            "meta_rm": state.meta_name,
            "k_meta": None if state.meta_rm is None else config.meta_default(config.k),
            "queue_depth": batcher.depth,
            "max_queue": config.max_queue,
            "in_flight": batcher.in_flight,
            "max_batch": config.max_batch,
            "uptime_s": round(time.time() - state.started, 3),
        },
        status_code=200 if ok else 503,
    )


async def metrics_endpoint(request: HTTPRequest) -> PlainTextResponse:
    return PlainTextResponse(_state(request).metrics.render(), media_type="text/plain; version=0.0.4")
