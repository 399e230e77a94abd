"""What every `rewardscale` command shares: the consoles, one way to fail, the progress bar, and
the one place CLI options become a judge (`build_grm`, the meta RM, the embedded model). The
command modules (cli, serve.command, train.cli) import from here, never from each other."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from . import models
from .backends import BACKENDS, BackendError, MissingExtra, make_backend
from .grm import GRM
from .types import Sampling
from .verdict import VerdictOptions

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print `message` as an error (verbatim: a path with `[/]` or the advice `rewardscale[serve]`
    is not rich markup) and exit with `code`."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def progress_bar(transient: bool = True) -> Progress:
    """A progress bar on stderr (samples done/total, rate, elapsed, ETA); off when stderr is no TTY."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=not err.is_terminal,
    )


def build_grm(
    backend: str,
    model: str | None,
    base_url: list[str],
    api_key: str | None,
    parallel: int,
    temperature: float,
    max_tokens: int,
    seed: int,
    max_retries: int,
    lenient: bool,
    shuffle: bool,
    verdict: VerdictOptions | None = None,
    threads: int | None = None,
    upstream_timeout: float | None = None,
    upstream_retries: int = 5,
) -> GRM:
    """One place that turns CLI options into a GRM (shared by every command). `upstream_timeout`
    (seconds per HTTP attempt, default 600) and `upstream_retries` apply to the openai backend."""
    verdict = verdict or VerdictOptions()
    if backend not in BACKENDS:
        fail(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    options: dict = {}
    if backend == "llamacpp":
        name = model or models.DEFAULT_MODEL
        if models.is_embedded(name) and not models.is_assembled(name):
            prepare_model(name)
        options = {"model": name, "parallel": parallel}
        if threads:
            options["threads"] = threads
    elif backend == "openai":
        options = {"base_url": base_url, "model": model, "api_key": api_key}
        options["verdict_constraint"] = verdict.verdict_constraint
        options["timeout"] = upstream_timeout or 600.0
        options["max_retries"] = upstream_retries
    elif backend == "transformers":
        options = {"model": model}
    try:
        engine = make_backend(backend, **options)
    except (BackendError, MissingExtra, models.ModelUnavailable) as e:
        fail(str(e))
    sampling = Sampling(temperature=temperature, max_tokens=max_tokens)
    try:
        return GRM(
            engine,
            sampling=sampling,
            seed=seed,
            max_retries=max_retries,
            lenient=lenient,
            shuffle=shuffle,
            force_verdict=verdict.force_verdict,
            critique_budget=verdict.critique_budget,
            score_mode=verdict.score_mode,
            constrain_format=verdict.constrain_format,
        )
    except ValueError as e:
        fail(str(e))


def load_meta_rm(path: Path | None, k: int | None = None, k_meta: int | None = None):
    """--meta-rm DIR -> a loaded MetaRM (None without one); a clear error for a wrong directory,
    a missing [metarm] extra, --k-meta without --meta-rm, or k_meta outside 1..k."""
    from .vote import check_k_meta

    if path is None:
        if k_meta is not None:
            fail("--k-meta needs --meta-rm DIR (MetaRM@k ranks the samples by the meta RM's q)")
        return None
    try:
        from .metarm.model import MetaRM, NotAMetaRM, read_marker

        read_marker(path)  # a wrong directory fails before torch is imported
        if k is not None and k_meta is not None:
            check_k_meta(k_meta, k)
        return MetaRM.load(path)
    except (NotAMetaRM, MissingExtra, ValueError) as e:
        fail(str(e))


def prepare_model(name: str) -> Path:
    """Assemble an embedded model into the cache, with a progress bar."""
    model = models.get_model(name)
    with progress_bar() as bar:
        task = bar.add_task(f"assembling {name}", total=model.size, rate="")
        try:
            return models.model_path(name, progress=lambda done, total: bar.update(task, completed=done))
        except models.ModelUnavailable as e:
            fail(str(e))
    raise AssertionError  # unreachable
