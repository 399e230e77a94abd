"""`rewardscale serve`: the CLI command (registered on the app in cli.py). The backend and judge
flags are `rewardscale score`'s (derived from the configs, `cli_options.config_flags`) and go
through `cli_common.build_grm`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from .. import cli_common
from ..cli_common import checked, err, fail, load_meta_rm
from ..cli_options import config_flags
from ..config import BackendConfig, JudgeConfig
from ..scales import SCALES


@config_flags(
    help={
        "upstream_timeout": "openai: seconds one HTTP attempt may take, body included (default: --timeout).",
    }
)
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
        None,
        "--k-meta",
        min=1,
        help="With --meta-rm: default k_meta when a call omits it (default: k // 2; capped at a call's k).",
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
    *,
    backend_cfg: BackendConfig,  # from its flags (@config_flags)
    judge_cfg: JudgeConfig,
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
    meta_rm = load_meta_rm(meta_rm_path, k_meta)  # once, before the judge: a wrong dir fails fast
    if backend_cfg.upstream_timeout is None:  # an attempt need not outlive its call
        backend_cfg = checked(dataclasses.replace, backend_cfg, upstream_timeout=timeout)
    grm = cli_common.build_grm(backend_cfg, judge_cfg)
    meta = "" if meta_rm is None else f", MetaRM@k with {meta_rm_path} (k_meta={config.meta_default(k)})"
    guard = ", bearer token required" if config.auth_token else ""
    err.print(
        f"serving {getattr(grm.backend, 'model_id', backend_cfg.kind)} on http://{host}:{port} (k={k}{meta}, "
        f"max batch {max_batch}, queue {max_queue}{guard})",
        markup=False,
    )
    if not config.auth_token and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: {host} is not loopback and no --auth-token is set: anyone who can reach it can score")
    run(grm, config, host=host, port=port, log_level=log_level, meta_rm=meta_rm)
