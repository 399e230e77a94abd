"""The HTTP reward server (`rewardscale serve`): /v1/score, OpenRLHF's /get_reward, /health,
/metrics, with dynamic batching. Needs the `[serve]` extra (fastapi, uvicorn), imported lazily."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from ..scales import SCALES, scaled
from .config import ServerConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..grm import GRM, SampleScorer

__all__ = ["SCALES", "ServerConfig", "create_app", "require_extra", "run", "scaled"]


def require_extra() -> None:
    """Raise MissingExtra naming `rewardscale[serve]` when fastapi or uvicorn is not installed."""
    from ..backends.base import MissingExtra

    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            error = MissingExtra(module, "serve")
            error.args = (f"the reward server needs '{module}', not installed: pip install 'rewardscale[serve]'",)
            raise error


def create_app(
    grm: GRM, config: ServerConfig | None = None, close_grm: bool = True, meta_rm: SampleScorer | None = None
) -> FastAPI:
    """Build the FastAPI app around a GRM, with MetaRM@k when `meta_rm` is given (see
    `rewardscale.serve.app.create_app`)."""
    require_extra()
    from .app import create_app as build

    return build(grm, config, close_grm=close_grm, meta_rm=meta_rm)


def run(
    grm: GRM,
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    meta_rm: SampleScorer | None = None,
) -> None:
    """Serve until interrupted (uvicorn, one process: the GRM and the meta RM live in it)."""
    require_extra()
    import uvicorn

    app = create_app(grm, config, meta_rm=meta_rm)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
