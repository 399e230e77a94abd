"""What every `rewardscale` command shares: the consoles, one way to fail, the progress bar, and
the one place CLI options become a judge (`build_grm`, the meta RM, the embedded model). The
command modules of `cli/` (score, bench, models_cmd, serve, train) import from here, never from
each other."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .. import models
from ..backends import BackendError, MissingExtra
from ..config import BackendConfig, JudgeConfig, build_backend
from ..grm import GRM
from ..store import SampleStore, StoreError

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def fail(message: str, code: int = 2) -> NoReturn:
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


LOG_EVERY_S = 30.0  # off a terminal: one progress line at most this often


def rate_callback(bar: Progress, task: TaskID, generated: Callable[[], int] | None = None) -> Callable[[int], None]:
    """A progress callback that advances `task` and shows samples/s since the first call; off a
    terminal (a log file, nohup) it prints a line with the rate and an ETA every 30 s instead.
    `generated` counts what was really generated (a store's count), so the rate and ETA of a
    resumed run ignore what the store served."""
    start = time.monotonic()
    last_line = [start]

    def advance(n: int) -> None:
        done = bar.tasks[task].completed + n
        now = time.monotonic()
        rate = (done if generated is None else generated()) / max(now - start, 1e-9)
        bar.update(task, completed=done, rate=f"{rate:.2f} samples/s")
        total = bar.tasks[task].total
        if bar.console.is_terminal or (now - last_line[0] < LOG_EVERY_S and done != total):
            return
        last_line[0] = now
        eta = f", ETA {max(0.0, total - done) / rate / 60:.0f} min" if total and rate else ""
        of = f"/{total:.0f}" if total else ""
        bar.console.print(f"{bar.tasks[task].description}: {done:.0f}{of} samples, {rate * 60:.1f}/min{eta}")

    return advance


def checked(build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`build(*args, **kwargs)` (a config class, `dataclasses.replace` of one), or exit with its
    validation error (a ValueError: `ConfigError`)."""
    try:
        return build(*args, **kwargs)
    except ValueError as e:
        fail(str(e))


def build_grm(backend: BackendConfig, judge: JudgeConfig) -> GRM:
    """The one place the commands turn their settings into a GRM: assembles an embedded model on
    first use (with a progress bar), builds the backend (`config.build_backend`) and the judge
    (`GRM(engine, judge)`, which checks the settings against the backend), or exits with a clear
    error."""
    if backend.kind == "llamacpp":
        name = backend.model_id
        if models.is_embedded(name) and not models.is_assembled(name):
            prepare_model(name)
    try:
        engine = build_backend(backend)
    except (BackendError, MissingExtra, models.ModelUnavailable) as e:
        fail(str(e))
    try:
        return GRM(engine, judge)
    except ValueError as e:
        engine.close()
        fail(str(e))


def load_meta_rm(path: Path | None, k_meta: int | None = None):
    """--meta-rm DIR -> a loaded MetaRM (None without one); a clear error for a wrong directory,
    a missing [metarm] extra, --k-meta without --meta-rm, or a k_meta below 1 (one above k is
    capped at k: `vote.k_meta_at`, the rule everywhere)."""
    from ..vote import k_meta_at

    if path is None:
        if k_meta is not None:
            fail("--k-meta needs --meta-rm DIR (MetaRM@k ranks the samples by the meta RM's q)")
        return None
    try:
        from ..metarm.model import MetaRM, NotAMetaRM, read_marker

        read_marker(path)  # a wrong directory fails before torch is imported
        if k_meta is not None:
            k_meta_at(1, k_meta)
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


def open_store(path: Path, argv: list[str]) -> SampleStore:
    """The sample store at `path`, or a clear error (not a SQLite file, read-only, a directory);
    warns when another process is running on the same store."""
    try:
        store = SampleStore(path, argv=argv)
    except StoreError as e:
        fail(str(e))
    if store.shared:
        err.print(
            f"[yellow]warning:[/] another process is using the sample store {escape(str(path))}; "
            "samples neither has stored yet may be generated by both"
        )
    return store
