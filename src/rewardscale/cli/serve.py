"""`rewardscale serve`: the CLI command (registered on the app in `cli/__init__.py`). The server's flags are
derived from `ServerConfig`, the backend and judge flags are `rewardscale score`'s (from their
configs, `options.config_flags`); the judge's settings ride in `ServerConfig.judge` and go
through `common.build_grm`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from ..config import BackendConfig, JudgeConfig
from ..serve.config import ServerConfig
from . import common
from .common import checked, err, fail, load_meta_rm
from .options import config_flags


@config_flags(
    help={
        "upstream_timeout": "openai: seconds one HTTP attempt may take, body included (default: --timeout).",
    }
)
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
    meta_rm_path: Path | None = typer.Option(
        None,
        "--meta-rm",
        help="A meta RM dir (rewardscale train metarm): every call is scored with MetaRM@k, the top k_meta "
        "samples by q vote.",
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    *,
    server_cfg: ServerConfig,  # from its flags (@config_flags)
    backend_cfg: BackendConfig,
    judge_cfg: JudgeConfig,
) -> None:
    """Serve the GRM over HTTP: /v1/score, OpenRLHF's /get_reward, /health, /metrics (MetaRM@k
    with --meta-rm)."""
    from ..backends import MissingExtra
    from ..serve import require_extra, run

    try:
        require_extra()
    except MissingExtra as e:
        fail(str(e))
    config = dataclasses.replace(server_cfg, judge=judge_cfg)
    meta_rm = load_meta_rm(meta_rm_path, config.k_meta)  # once, before the judge: a wrong dir fails fast
    if backend_cfg.upstream_timeout is None:  # an attempt need not outlive its call
        backend_cfg = checked(dataclasses.replace, backend_cfg, upstream_timeout=config.timeout_s)
    grm = common.build_grm(backend_cfg, config.judge)
    meta = "" if meta_rm is None else f", MetaRM@k with {meta_rm_path} (k_meta={config.meta_default(config.k)})"
    guard = ", bearer token required" if config.auth_token else ""
    err.print(
        f"serving {getattr(grm.backend, 'model_id', backend_cfg.kind)} on http://{host}:{port} (k={config.k}{meta}, "
        f"max batch {config.max_batch}, queue {config.max_queue}{guard})",
        markup=False,
    )
    if not config.auth_token and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: {host} is not loopback and no --auth-token is set: anyone who can reach it can score")
    run(grm, config, host=host, port=port, log_level=log_level, meta_rm=meta_rm)
