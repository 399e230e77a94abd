"""`rewardscale models`: the embedded models and adapters (size, license, sha256, state), the
engine's doctor lines, and `models prepare`."""

from __future__ import annotations

import typer
from rich.table import Table

from .. import models
from .common import console, fail, prepare_model


def models_cmd(
    prepare: str | None = typer.Argument(
        None, help="'prepare' assembles and verifies the default model (or --name) into the cache."
    ),
    name: str | None = typer.Option(None, "--name", help="Which embedded model."),
) -> None:
    """Show the embedded models (size, license, sha256, where they are) or prepare one."""
    if prepare not in (None, "prepare"):
        fail(f"unknown action {prepare!r}; use 'rewardscale models' or 'rewardscale models prepare'")
    if prepare == "prepare":
        path = prepare_model(name or models.DEFAULT_MODEL)
        console.print(f"ready: {path}")
        return
    table = Table(title=f"embedded models (cache: {models.cache_dir() / 'models'})")
    for col in ("name", "size", "license", "parts (PyPI)", "state", "sha256"):
        table.add_column(col)
    for m in models.MODELS.values():
        try:
            models.part_paths(m)
            parts = "installed"
        except models.ModelUnavailable:
            parts = "missing"
        state = "assembled" if models.is_assembled(m.name) else "not assembled"
        default = " (default)" if m.name == models.DEFAULT_MODEL else ""
        table.add_row(
            m.name + default,
            f"{m.size / 2**20:,.0f} MiB",
            m.license,
            f"{m.distribution_prefix}1..{m.n_parts}=={m.version}: {parts}",
            state,
            m.sha256[:16] + "...",
        )
    console.print(table)
    from ..backends.engine_info import describe

    for line in describe():
        console.print(line, markup=False, highlight=False)
    for a in models.ADAPTERS.values():
        default = " (default)" if a.name == models.DEFAULT_MODEL else ""
        console.print(
            f"{a.name}{default}: {a.description}; base {a.base} + GGUF LoRA {a.filename} "
            f"({a.size / 2**20:.1f} MiB, in the package, sha256 {a.sha256[:16]}...); card: {a.card}"
        )
