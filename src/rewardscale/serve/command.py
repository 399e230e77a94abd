"""`rewardscale serve`: the CLI command (registered on the app in cli.py). Backend options are the
same as `rewardscale score`'s and go through `cli_common.build_grm`."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import cli_common
from ..backends import BACKENDS
from ..cli_common import err, fail, load_meta_rm
from ..cli_options import (
    ConstrainFormat,
    CritiqueBudget,
    ForceVerdict,
    Lora,
    ScoreMode,
    UpstreamRetries,
    UpstreamTimeout,
    VerdictConstraint,
)
from ..scales import SCALES


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
    k: int = typer.Option(4, "-k", "--k", min=1, help="Default samples per request (Voting@k) when a call omits k."),
    meta_rm_path: Path | None = typer.Option(
        None,
        "--meta-rm",
        help="A meta RM dir (rewardscale train metarm): every call is scored with MetaRM@k, the top k_meta "
        "samples by q vote.",
    ),
    k_meta: int | None = typer.Option(
        None, "--k-meta", min=1, help="With --meta-rm: default k_meta when a call omits it (default: k // 2)."
    ),
    max_k: int = typer.Option(64, "--max-k", min=1, help="Largest k a call may ask for."),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="GRM requests per backend call (1: no batching)."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", min=0, help="Wait for more requests to batch (ms)."),
    max_queue: int = typer.Option(4096, "--max-queue", min=1, help="Queued GRM requests before answering 503."),
    timeout: float = typer.Option(600.0, "--timeout", min=0.001, help="Seconds before a call is answered 504."),
    max_requests: int = typer.Option(1024, "--max-requests", min=1, help="GRM requests per HTTP call."),
    max_responses: int = typer.Option(64, "--max-responses", min=1, help="Responses per GRM request."),
    max_chars: int = typer.Option(100_000, "--max-chars", min=1, help="Characters per GRM request."),
    reward_scale: str = typer.Option(
        "unit", "--reward-scale", help=f"/get_reward scalar: {', '.join(SCALES)} (unit: mean score mapped to 0..1)."
    ),
    abstain_reward: float = typer.Option(0.0, "--abstain-reward", help="/get_reward reward when all samples abstain."),
    backend: str = typer.Option("llamacpp", "--backend", "-b", help=f"One of: {', '.join(BACKENDS)}."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Embedded model name or GGUF path (llamacpp), served name (openai), HF dir/id."
    ),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI-compatible server URL (repeatable)."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="Bearer token."),
    parallel: int = typer.Option(8, "--parallel", min=1, help="llama.cpp sequences decoded together."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="llama.cpp CPU threads (default: all cores)."),
    temperature: float = typer.Option(0.5, "--temperature", min=0.0, help="Sampling temperature (paper: 0.5)."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=16, help="Token limit per sample."),
    seed: int = typer.Option(0, "--seed", help="Seed for permutations, sampling and tie-breaks."),
    max_retries: int = typer.Option(2, "--max-retries", min=0, help="Redraws of an unparseable sample."),
    lenient: bool = typer.Option(False, "--lenient", help="Recover near-miss verdicts (marked 'recovered')."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Position-balanced response orders."),
    force_verdict: ForceVerdict = False,
    critique_budget: CritiqueBudget = None,
    score_mode: ScoreMode = "integer",
    verdict_constraint: VerdictConstraint = "none",
    constrain_format: ConstrainFormat = False,
    lora: Lora = (),
    upstream_timeout: UpstreamTimeout = None,
    upstream_retries: UpstreamRetries = 5,
    workers: int = typer.Option(
        4, "--workers", min=1, help="Batches scored side by side (openai, llamacpp backends; others use 1)."
    ),
    auth_token: str | None = typer.Option(
        None,
        "--auth-token",
        envvar="REWARDSCALE_API_TOKEN",
        help="Require 'Authorization: Bearer TOKEN' on every endpoint but /health (env REWARDSCALE_API_TOKEN).",
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the GRM over HTTP: /v1/score, OpenRLHF's /get_reward, /health, /metrics (MetaRM@k
    with --meta-rm)."""
    from ..backends import MissingExtra
    from . import ServerConfig, require_extra, run

    try:
        require_extra()
        config = ServerConfig(
            k=k,
            max_k=max_k,
            k_meta=k_meta,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            timeout_s=timeout,
            max_requests=max_requests,
            max_responses=max_responses,
            max_chars=max_chars,
            reward_scale=reward_scale,
            abstain_reward=abstain_reward,
            workers=workers,
            auth_token=auth_token or None,
        )
    except (MissingExtra, ValueError) as e:
        fail(str(e))
    meta_rm = load_meta_rm(meta_rm_path, k, k_meta)  # once, before the judge: a wrong dir fails fast
    backend_cfg = cli_common.backend_config(
        kind=backend,
        model=model,
        base_urls=tuple(base_url),
        api_key=api_key,
        parallel=parallel,
        threads=threads,
        lora=tuple(lora),
        verdict_constraint=verdict_constraint,
        upstream_timeout=upstream_timeout or timeout,  # an attempt need not outlive its call
        upstream_retries=upstream_retries,
    )
    judge_cfg = cli_common.judge_config(
        temperature,
        max_tokens,
        seed=seed,
        max_retries=max_retries,
        lenient=lenient,
        shuffle=shuffle,
        force_verdict=force_verdict,
        critique_budget=critique_budget,
        score_mode=score_mode,
        constrain_format=constrain_format,
    )
    grm = cli_common.build_grm(backend_cfg, judge_cfg)
    meta = "" if meta_rm is None else f", MetaRM@k with {meta_rm_path} (k_meta={config.meta_default(k)})"
    guard = ", bearer token required" if config.auth_token else ""
    err.print(
        f"serving {getattr(grm.backend, 'model_id', backend)} on http://{host}:{port} (k={k}{meta}, "
        f"max batch {max_batch}, queue {max_queue}{guard})",
        markup=False,
    )
    if not config.auth_token and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: {host} is not loopback and no --auth-token is set: anyone who can reach it can score")
    run(grm, config, host=host, port=port, log_level=log_level, meta_rm=meta_rm)
