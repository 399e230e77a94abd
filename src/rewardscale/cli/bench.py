"""`rewardscale bench`: a benchmark run (sample K once, Voting@k / MetaRM@k for every k), its
report and plots; `--stored-only` reports from a sample store without an engine."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..backends import BackendError
from ..config import BackendConfig, JudgeConfig
from ..grm import GRM
from ..stored import StoredBackend
from . import common
from .common import console, err, fail, load_meta_rm, open_store, progress_bar
from .options import config_flags


@config_flags(help={"seed": "Seed for plans, sampling, tie-breaks, subsets, bootstrap."})
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
    *,
    backend_cfg: BackendConfig,  # from its flags (@config_flags)
    judge_cfg: JudgeConfig,
) -> None:
    """Benchmark the GRM: sample K once, report Voting@k for every k (results.json, results.md, plot);
    with --meta-rm also MetaRM@k from the same samples."""
    try:
        from ..bench import SchemaError, parse_ks, run_bench
        from ..bench.baselines import make_baselines
    except ImportError as e:
        fail(f"rewardscale bench needs the [bench] extra: pip install 'rewardscale[bench]' ({e})")

    try:
        k_list = parse_ks(ks)
    except ValueError as e:
        fail(str(e))
    meta_rm = load_meta_rm(meta_rm_path, k_meta)
    store_path = store_path or out / "samples.sqlite"
    if stored_only:  # no engine: read the store under the same model id and the same judge settings
        # the same JudgeConfig as the run gives the same keys: the token limit (capped by the
        # critique budget when forcing), the grammar, and the forced verdicts (stored since decoded)
        if backend_cfg.model_id is None:
            fail("--stored-only needs --model: the model the stored samples were drawn with")
        grm = GRM(StoredBackend(None, open_store(store_path, sys.argv), model_id=backend_cfg.model_id), judge_cfg)
    else:
        grm = common.build_grm(backend_cfg, judge_cfg)
        grm.backend = StoredBackend(grm.backend, open_store(store_path, sys.argv))
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
                seed=judge_cfg.seed,
                limit=limit,
                progress=common.rate_callback(bar, task, generated=lambda: grm.store.stats.generated),
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
