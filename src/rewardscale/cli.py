"""`rewardscale` command line: score responses, manage the embedded models."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from . import models
from .backends import BACKENDS, BackendError, MissingExtra, make_backend
from .batch import InputError, read_requests, write_jsonl_atomic
from .cli_options import (
    ConstrainFormat,
    CritiqueBudget,
    ForceVerdict,
    ScoreMode,
    UpstreamRetries,
    UpstreamTimeout,
    VerdictConstraint,
)
from .grm import GRM
from .store import SampleStore
from .types import InvalidRequest, Request, Reward, Sampling
from .verdict import VerdictOptions
from .verdict_report import verdict_report

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def progress_bar(transient: bool = True) -> Progress:
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
            console.print("[bold]principles:[/]", j.principles or "-", markup=True, highlight=False)
            console.print("[bold]critique:[/]", j.critique or "-", markup=True, highlight=False)
            shown = "-" if j.shown_scores is None else list(j.shown_scores)
            orig = "-" if j.scores is None else list(j.scores)
            console.print(f"[bold]scores:[/] shown order {shown} -> original order {orig}")
            if j.note:
                console.print(f"[dim]{j.note}[/]")


@app.command()
def score(
    input_path: Path | None = typer.Argument(
        None,
        metavar="[REQUESTS.jsonl]",
        help="Score many requests: JSONL, one {query|messages, responses, id?} object a line.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="With REQUESTS.jsonl: write rewards JSONL here (atomically); else stdout."
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
    backend: str = typer.Option("llamacpp", "--backend", "-b", help=f"One of: {', '.join(BACKENDS)}."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Embedded model name or GGUF path (llamacpp), served name (openai), HF dir/id."
    ),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI-compatible server URL (repeatable)."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="Bearer token."),
    parallel: int = typer.Option(8, "--parallel", min=1, help="llama.cpp sequences decoded together."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="llama.cpp CPU threads (default: all cores; 1 helps on a busy machine)."
    ),
    temperature: float = typer.Option(0.5, "--temperature", min=0.0, help="Sampling temperature (paper: 0.5)."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=16, help="Token limit per sample."),
    seed: int = typer.Option(0, "--seed", help="Seed for permutations, sampling and tie-breaks."),
    max_retries: int = typer.Option(2, "--max-retries", min=0, help="Redraws of an unparseable sample."),
    lenient: bool = typer.Option(False, "--lenient", help="Recover near-miss verdicts (marked 'recovered')."),
    shuffle: bool = typer.Option(True, "--shuffle/--no-shuffle", help="Position-balanced response orders."),
    show_samples: bool = typer.Option(
        False, "--show-samples", help="Print every sample's principles, critique, scores."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reward as JSON."),
    force_verdict: ForceVerdict = False,
    critique_budget: CritiqueBudget = None,
    score_mode: ScoreMode = "integer",
    verdict_constraint: VerdictConstraint = "none",
    constrain_format: ConstrainFormat = False,
    meta_rm_path: Path | None = typer.Option(
        None, "--meta-rm", help="A meta RM dir (rewardscale train metarm): MetaRM@k, vote with the top k_meta samples."
    ),
    k_meta: int | None = typer.Option(None, "--k-meta", help="With --meta-rm: samples that vote (default k // 2)."),
    upstream_timeout: UpstreamTimeout = None,
    upstream_retries: UpstreamRetries = 5,
) -> None:
    """Score responses to one query (--query/--messages), or many from a JSONL file, with Voting@k
    (or MetaRM@k with --meta-rm)."""
    options = (
        backend,
        model,
        base_url,
        api_key,
        parallel,
        temperature,
        max_tokens,
        seed,
        max_retries,
        lenient,
        shuffle,
        VerdictOptions(force_verdict, critique_budget, score_mode, verdict_constraint, constrain_format),
        threads,
        upstream_timeout,
        upstream_retries,
    )
    meta_rm = load_meta_rm(meta_rm_path, k, k_meta)
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
            options,
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
    grm = build_grm(*options)
    if store_path is not None and not no_store:
        grm.store = SampleStore(store_path, argv=sys.argv)
    with grm, progress_bar() as bar:
        task = bar.add_task("sampling", total=k, rate="")
        try:
            reward = grm.score(request, k=k, progress=lambda n: bar.advance(task, n), meta_rm=meta_rm, k_meta=k_meta)
        except BackendError as e:
            fail(str(e))
    if as_json:
        print(json.dumps(reward.to_dict(samples=show_samples), ensure_ascii=False, indent=2))
    else:
        print_reward(reward, show_samples)


def rate_callback(bar: Progress, task: TaskID) -> Callable[[int], None]:
    """A progress callback that advances `task` and shows samples/s since the first call."""
    start = time.monotonic()

    def advance(n: int) -> None:
        done = bar.tasks[task].completed + n
        elapsed = max(time.monotonic() - start, 1e-9)
        bar.update(task, completed=done, rate=f"{done / elapsed:.2f} samples/s")

    return advance


def score_file(
    input_path: Path,
    output: Path | None,
    store_path: Path | None,
    skip_invalid: bool,
    with_samples: bool,
    k: int,
    options: tuple,
    meta_rm=None,
    k_meta: int | None = None,
) -> None:
    """`rewardscale score REQUESTS.jsonl`: all requests batched, samples stored, output atomic."""
    try:
        requests, errors = read_requests(input_path, skip_invalid=skip_invalid)
    except (InputError, OSError) as e:
        fail(str(e))
    for e in errors:
        err.print(f"[yellow]skipped[/] {e}")
    if not requests:
        fail(f"{input_path}: no valid requests")
    grm = build_grm(*options)
    store = SampleStore(store_path, argv=sys.argv) if store_path else None
    grm.store = store
    with grm, progress_bar(transient=False) as bar:
        task = bar.add_task(f"scoring {len(requests)} requests", total=k * len(requests), rate="")
        try:
            rewards = grm.score_batch(requests, k=k, progress=rate_callback(bar, task), meta_rm=meta_rm, k_meta=k_meta)
        except BackendError as e:
            fail(str(e))
    rows = [r.to_dict(samples=with_samples) for r in rewards]
    if output:
        write_jsonl_atomic(output, rows)
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
        summary += f"; {abstained} samples abstained (unparseable after retries)"
    err.print(summary + (f" -> {output}" if output else ""))
    err.print(verdict_report(rewards).summary())


@app.command()
def bench(
    names: list[str] = typer.Argument(
        ...,
        help="Benchmark(s): rewardbench, rewardbench2, ppe-preference, ppe-correctness, rmb, realmistake, rm-bench, "
        "judgebench, generic.",
    ),
    data: list[str] = typer.Option(
        ..., "--data", "-d", help="Data file per benchmark, same order (.jsonl/.json/.parquet, or hf:NAME[:SPLIT])."
    ),
    ks: str = typer.Option("1,2,4,8", "--k", "-k", help="Voting@k values; K = max is sampled once."),
    out: Path = typer.Option(Path("bench-results"), "--out", help="Report folder."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="First N records of each benchmark (an RM-Bench record is 9 pairs)."
    ),
    per_subset: bool | None = typer.Option(
        None, "--per-subset/--no-per-subset", help="Per-subset curves in the plot (default: when a benchmark has few)."
    ),
    store_path: Path | None = typer.Option(None, "--store", help="Sample store (default: OUT/samples.sqlite)."),
    backend: str = typer.Option("llamacpp", "--backend", "-b", help=f"One of: {', '.join(BACKENDS)}."),
    model: str | None = typer.Option(None, "--model", "-m", help="Judge model (as for `score`)."),
    base_url: list[str] = typer.Option([], "--base-url", help="OpenAI-compatible server URL (repeatable)."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="OPENAI_API_KEY", help="Bearer token."),
    parallel: int = typer.Option(8, "--parallel", min=1, help="llama.cpp sequences decoded together."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="llama.cpp CPU threads (default: all cores; 1 helps on a busy machine)."
    ),
    temperature: float = typer.Option(0.5, "--temperature", min=0.0, help="Sampling temperature."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=16, help="Token limit per sample."),
    seed: int = typer.Option(0, "--seed", help="Seed for plans, sampling, tie-breaks, subsets, bootstrap."),
    max_retries: int = typer.Option(2, "--max-retries", min=0, help="Redraws of an unparseable sample."),
    lenient: bool = typer.Option(False, "--lenient", help="Recover near-miss verdicts."),
    baseline: list[str] = typer.Option(
        [], "--baseline", help="Also run: 'pairwise-judge' (A/B, order swapped), 'scalar:MODEL' (sequence classifier)."
    ),
    stored_only: bool = typer.Option(
        False, "--stored-only", help="Generate nothing: report on the examples fully in the store (partial report)."
    ),
    meta_rm_path: Path | None = typer.Option(
        None, "--meta-rm", help="A meta RM dir: also report MetaRM@k (same K samples) next to Voting@k."
    ),
    k_meta: int | None = typer.Option(
        None, "--k-meta", min=1, help="With --meta-rm: samples that vote at each k (default k // 2; capped at k)."
    ),
    force_verdict: ForceVerdict = False,
    critique_budget: CritiqueBudget = None,
    verdict_constraint: VerdictConstraint = "none",
    constrain_format: ConstrainFormat = False,
) -> None:
    """Benchmark the GRM: sample K once, report Voting@k for every k (results.json, results.md, plot);
    with --meta-rm also MetaRM@k from the same samples."""
    try:
        from .bench import SchemaError, parse_ks, run_bench
        from .bench.baselines import make_baselines
    except ImportError as e:
        fail(f"rewardscale bench needs the [bench] extra: pip install 'rewardscale[bench]' ({e})")

    try:
        k_list = parse_ks(ks)
    except ValueError as e:
        fail(str(e))
    meta_rm = load_meta_rm(meta_rm_path, None, k_meta)
    if stored_only:  # no engine: read the store under the same model id and sampling settings
        from .bench.runner import StoreOnly

        # the same settings as the run give the same keys: the token limit (capped by the critique
        # budget when forcing), the grammar, and the forced verdicts (stored since they are decoded)
        engine = StoreOnly(model or models.DEFAULT_MODEL)
        grm = GRM(
            engine,
            sampling=Sampling(temperature=temperature, max_tokens=max_tokens),
            seed=seed,
            max_retries=max_retries,
            lenient=lenient,
            force_verdict=force_verdict,
            critique_budget=critique_budget,
            constrain_format=constrain_format,
        )
    else:
        grm = build_grm(
            backend,
            model,
            base_url,
            api_key,
            parallel,
            temperature,
            max_tokens,
            seed,
            max_retries,
            lenient,
            True,
            verdict=VerdictOptions(
                force_verdict, critique_budget, verdict_constraint=verdict_constraint, constrain_format=constrain_format
            ),
            threads=threads,
        )
    grm.store = SampleStore(store_path or out / "samples.sqlite", argv=sys.argv)
    try:
        baselines = make_baselines(baseline, grm)
    except ValueError as e:
        fail(str(e))
    with grm, progress_bar(transient=False) as bar:
        task = bar.add_task(f"sampling K={max(k_list)}", total=None, rate="")
        try:
            results = run_bench(
                grm,
                names,
                data,
                k_list,
                out,
                seed=seed,
                limit=limit,
                progress=rate_callback(bar, task),
                baselines=baselines,
                on_total=lambda total: bar.update(task, total=total),
                stored_only=stored_only,
                meta_rm=meta_rm,
                k_meta=k_meta,
                per_subset=per_subset,
            )
        except (SchemaError, ValueError, ImportError) as e:
            fail(str(e))
        except BackendError as e:
            fail(str(e))
    s = grm.store.stats
    console.print((out / "results.md").read_text(), markup=False, highlight=False)
    err.print(f"samples: {s.generated} generated, {s.reused} from the store; report in {out}/")
    del results


@app.command("models")
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


def main() -> None:  # pragma: no cover
    sys.exit(app())


# `rewardscale serve` lives in its own module (reward server, RL integrations)
from .serve.command import serve as _serve  # noqa: E402

app.command("serve")(_serve)

# `rewardscale train rft|rl|...` is a sub-app in its own module (SPCT training)
from .train.cli import app as _train_app  # noqa: E402

app.add_typer(_train_app, name="train")
