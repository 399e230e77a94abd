"""`rewardscale score`: one request from flags, or a JSONL file of requests to a JSONL of rewards."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from .. import models
from ..backends import BackendError
from ..batch import InputError, read_requests, write_jsonl_atomic
from ..config import BackendConfig, JudgeConfig
from ..store import StoreError
from ..stored import StoredBackend
from ..types import InvalidRequest, Request, Reward
from ..verdict_report import verdict_report
from . import common
from .common import console, err, fail, load_meta_rm, open_store, progress_bar
from .options import config_flags


def read_messages(value: str) -> list:
    """--messages takes a JSON list inline, or a path to a JSON file holding one."""
    text = Path(value).read_text() if not value.lstrip().startswith("[") and Path(value).is_file() else value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"--messages is not valid JSON: {e}")
    if not isinstance(data, list):
        fail("--messages must be a JSON list of {role, content} objects")
    return data


def print_reward(reward: Reward, show_samples: bool) -> None:
    title = f"Voting@{reward.k}: {reward.n_valid}/{len(reward.samples)} samples valid"
    if reward.k_meta is not None:
        title = f"MetaRM@{reward.k} (top {reward.k_meta} by q): {reward.n_valid}/{len(reward.samples)} samples valid"
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("reward", justify="right")
    table.add_column("mean score", justify="right")
    table.add_column("best", justify="center")
    table.add_column("response")
    for i, (r, resp) in enumerate(zip(reward.rewards, reward.request.responses)):
        mean = reward.mean_scores[i]
        preview = resp.replace("\n", " ")
        table.add_row(
            str(i),
            f"{r:g}",
            "-" if mean is None else f"{mean:.2f}",
            "*" if i == reward.best else "",
            preview[:60] + ("..." if len(preview) > 60 else ""),
        )
    console.print(table)
    if reward.best is None:
        console.print("[yellow]every sample abstained: no best response[/]")
    elif sum(p > 0 for p in reward.win_prob) > 1:
        console.print(f"[yellow]tie between {[i for i, p in enumerate(reward.win_prob) if p > 0]}, broken by seed[/]")
    if show_samples:
        for pos, j in enumerate(reward.samples):
            voted = reward.selected is not None and pos in reward.selected
            q = "" if j.q is None else f"  q {j.q:.3f}" + (" (voted)" if voted else "")
            console.rule(
                f"sample {j.spec.index}  permutation {list(j.spec.permutation)}  seed {j.spec.seed}  "
                f"status {j.status.value}  attempts {j.attempts}{q}"
            )
            console.print("[bold]principles:[/]", escape(j.principles or "-"), markup=True, highlight=False)
            console.print("[bold]critique:[/]", escape(j.critique or "-"), markup=True, highlight=False)
            shown = "-" if j.shown_scores is None else list(j.shown_scores)
            orig = "-" if j.scores is None else list(j.scores)
            console.print(f"[bold]scores:[/] shown order {shown} -> original order {orig}")
            if j.note:
                console.print(f"[dim]{escape(j.note)}[/]")


@config_flags()
def score(
    input_path: Path | None = typer.Argument(
        None,
        metavar="[REQUESTS.jsonl]",
        help="Score many requests: JSONL, one {query|messages, responses, id?} object a line.",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write rewards JSONL here (atomically), one line per request (with --query too, with its samples); "
        "without it, REQUESTS.jsonl's rewards go to stdout.",
    ),
    store_path: Path | None = typer.Option(
        None,
        "--store",
        help="Sample store (SQLite). Default with REQUESTS.jsonl: <output>.samples.sqlite, or "
        "samples.sqlite in the user cache without -o. Rerun the same command to resume.",
    ),
    no_store: bool = typer.Option(False, "--no-store", help="Do not keep samples (no resume)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Report and skip malformed input lines."),
    with_samples: bool = typer.Option(
        True, "--samples/--no-samples", help="With REQUESTS.jsonl: include every sample in the output."
    ),
    query: str | None = typer.Option(None, "--query", "-q", help="The user's query (a plain string)."),
    messages: str | None = typer.Option(
        None, "--messages", help="A conversation instead of --query: JSON list of {role, content}, or a file."
    ),
    response: list[str] = typer.Option([], "--response", "-r", help="A response to score (repeat for n responses)."),
    k: int = typer.Option(8, "-k", "--k", min=1, help="Samples per request (Voting@k)."),
    show_samples: bool = typer.Option(
        False, "--show-samples", help="Print every sample's principles, critique, scores."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reward as JSON."),
    meta_rm_path: Path | None = typer.Option(
        None, "--meta-rm", help="A meta RM dir (rewardscale train metarm): MetaRM@k, vote with the top k_meta samples."
    ),
    k_meta: int | None = typer.Option(
        None, "--k-meta", min=1, help="With --meta-rm: samples that vote (default k // 2; capped at k)."
    ),
    *,
    backend_cfg: BackendConfig,  # from its flags (@config_flags)
    judge_cfg: JudgeConfig,
) -> None:
    """Score responses to one query (--query/--messages), or many from a JSONL file, with Voting@k
    (or MetaRM@k with --meta-rm)."""
    configs = (backend_cfg, judge_cfg)
    meta_rm = load_meta_rm(meta_rm_path, k_meta)
    if input_path is not None:
        if query is not None or messages is not None or response:
            fail("give either REQUESTS.jsonl or --query/--messages with --response, not both")
        if store_path is None and not no_store:
            store_path = Path(f"{output}.samples.sqlite") if output else models.cache_dir() / "samples.sqlite"
        score_file(
            input_path,
            output,
            None if no_store else store_path,
            skip_invalid,
            with_samples,
            k,
            configs,
            meta_rm,
            k_meta,
        )
        return
    if (query is None) == (messages is None):
        fail("give exactly one of --query or --messages")
    try:
        request = Request.make(query if messages is None else read_messages(messages), response)
    except InvalidRequest as e:
        fail(f"{e} (pass responses with --response/-r, once per response)")
    problem = None if output is None else output_problem(output)
    if problem:
        fail(problem)  # before any scoring: a bad -o costs nothing
    grm = common.build_grm(*configs)
    if store_path is not None and not no_store:
        grm.backend = StoredBackend(grm.backend, open_store(store_path, sys.argv))
    with grm, progress_bar() as bar:
        task = bar.add_task("sampling", total=k, rate="")
        try:
            reward = grm.score(request, k=k, progress=lambda n: bar.advance(task, n), meta_rm=meta_rm, k_meta=k_meta)
        except BackendError as e:
            fail(str(e))
    if output is not None:
        try:
            write_jsonl_atomic(output, [reward.to_dict(samples=True)])
        except OSError as e:
            fail(f"cannot write {output}: {e}")
    if as_json:
        print(json.dumps(reward.to_dict(samples=show_samples), ensure_ascii=False, indent=2))
    else:
        print_reward(reward, show_samples)


def output_problem(output: Path) -> str | None:
    """Why `-o OUTPUT` cannot be written (a directory, under a file, an unwritable folder), or None."""
    if output.is_dir():
        return f"-o {output} is a directory; give the path of a file to write"
    parent = next((p for p in [output.parent, *output.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        return f"-o {output}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"-o {output}: the folder {parent} is not writable"
    return None


def score_file(
    input_path: Path,
    output: Path | None,
    store_path: Path | None,
    skip_invalid: bool,
    with_samples: bool,
    k: int,
    configs: tuple[BackendConfig, JudgeConfig],
    meta_rm=None,
    k_meta: int | None = None,
) -> None:
    """`rewardscale score REQUESTS.jsonl`: all requests batched, samples stored, output atomic."""
    if output is not None:
        problem = output_problem(output)  # before any scoring: a bad -o costs nothing
        if problem:
            fail(problem)
    try:
        requests, errors = read_requests(input_path, skip_invalid=skip_invalid)
    except (InputError, OSError) as e:
        fail(str(e))
    for e in errors:
        err.print(f"[yellow]skipped[/] {escape(str(e))}")
    if not requests:
        fail(f"{input_path}: no valid requests")
    grm = common.build_grm(*configs)
    store = open_store(store_path, sys.argv) if store_path else None
    if store is not None:
        grm.backend = StoredBackend(grm.backend, store)
    with grm, progress_bar(transient=False) as bar:
        task = bar.add_task(f"scoring {len(requests)} requests", total=k * len(requests), rate="")
        try:
            rewards = grm.score_batch(
                requests, k=k, progress=common.rate_callback(bar, task), meta_rm=meta_rm, k_meta=k_meta
            )
        except (BackendError, StoreError) as e:
            fail(str(e))
    rows = [r.to_dict(samples=with_samples) for r in rewards]
    if output:
        try:
            write_jsonl_atomic(output, rows)
        except OSError as e:
            fail(f"cannot write {output}: {e} (the samples are in the store: rerun to write it)")
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    summary = f"scored {len(rewards)} requests at k={k}" + (
        f" (MetaRM@k, k_meta={rewards[0].k_meta})" if meta_rm is not None and rewards else ""
    )
    if errors:
        summary += f", skipped {len(errors)} invalid lines"
    if store:
        s = store.stats
        summary += f"; samples: {s.generated} generated, {s.reused} from the store ({store_path})"
        store.close()
    abstained = sum(r.n_abstained for r in rewards)
    if abstained:
        summary += f"; {abstained} samples abstained (unparseable or failed after retries)"
    err.print(summary + (f" -> {output}" if output else ""))
    err.print(verdict_report(rewards).summary())
