"""What RFT's SFT and RL share: optimiser/LoRA options, TRL argument building, the final save.

The final model is always written to the output directory in standard Hugging Face format
(weights, config, tokenizer with chat template), LoRA adapters merged in, so it can be scored at
once (`rewardscale score --backend transformers --model OUT`) or served by vLLM. Trainer
checkpoints (for resuming) go to `OUT/checkpoints`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, help_field
from .deps import require

DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass
class TrainOptions:
    """Optimisation settings shared by SFT and GRPO (each stage has its own defaults: `sft.SFT_DEFAULTS`,
    `rl.RL_DEFAULTS`, which are also its command's flag defaults). A field with help is a flag of
    `train rft` and `train rl` (`cli.options.config_flags`)."""

    learning_rate: float = help_field("Learning rate.", default=1e-5)
    epochs: float = help_field("Epochs over the data.", default=1.0)
    max_steps: int = help_field("Stop after this many optimiser steps (> 0 overrides epochs).", default=-1)
    batch_size: int = help_field("Per-device batch size.", default=1)
    grad_accum: int = help_field("Gradient accumulation steps.", default=8)
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora: bool = help_field("LoRA adapters (PEFT) or full fine-tuning.", default=False)
    lora_r: int = help_field("LoRA rank.", default=16)
    lora_alpha: int = help_field("LoRA alpha (scale = alpha / r).", default=32)
    lora_dropout: float = 0.05
    dtype: str = help_field(f"One of: {', '.join(DTYPES)} (auto: bfloat16; float32 on AVX2-only CPUs).", default="auto")
    gradient_checkpointing: bool = False
    seed: int = help_field("Seed for shuffles, sampling and training.", default=0)
    logging_steps: int = 1
    save_steps: int = help_field("Trainer checkpoint interval (OUT/checkpoints).", default=500)
    threads: int | None = help_field("torch CPU threads (default: torch's).", default=None)
    merge_lora: bool = help_field("LoRA: also save the merged full model to OUT (else only OUT/adapter).", default=True)
    lora_top_layers: int | None = help_field(
        "LoRA on the last N decoder layers only (cheaper backward on CPU).", default=None
    )

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, not {self.learning_rate}")
        if self.epochs < 0 or (self.epochs == 0 and self.max_steps <= 0):
            raise ConfigError("epochs must be > 0, or 0 with max_steps > 0 (max_steps overrides epochs)")
        if self.batch_size < 1 or self.grad_accum < 1 or self.save_steps < 1:
            raise ConfigError("batch_size, grad_accum and save_steps must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trainer_args(opts: TrainOptions, out: Path) -> dict[str, Any]:
    """Keyword arguments common to SFTConfig and GRPOConfig (both are TrainingArguments)."""
    (torch,) = require("torch")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    return {
        "output_dir": str(out / "checkpoints"),
        "learning_rate": opts.learning_rate,
        "num_train_epochs": opts.epochs,
        "max_steps": opts.max_steps,
        "per_device_train_batch_size": opts.batch_size,
        "gradient_accumulation_steps": opts.grad_accum,
        "warmup_steps": opts.warmup_steps,
        "weight_decay": opts.weight_decay,
        "max_grad_norm": opts.max_grad_norm,
        "activation_checkpointing": opts.gradient_checkpointing,
        "seed": opts.seed,
        "logging_steps": opts.logging_steps,
        "save_steps": opts.save_steps,
        "save_total_limit": 2,
        "disable_tqdm": False,
        "report_to": "none",
        "model_init_kwargs": {"dtype": dtype_name(opts.dtype)},
        # TRL turns bf16 autocast on by default; a float32 run must really compute in float32
        "bf16": dtype_name(opts.dtype) == "bfloat16",
        "use_cpu": not torch.cuda.is_available(),
    }


def dtype_name(dtype: str) -> str:
    """'auto' -> bfloat16 (the GPU norm; AVX2-only CPUs want float32: bf16 matmuls are slow there)."""
    return "bfloat16" if dtype == "auto" else dtype


def step_counter():
    """A TrainerCallback that counts the optimizer steps run in this process, so a resumed run can
    show it continued (the restored `log_history` also holds the steps before the checkpoint)."""
    (transformers,) = require("transformers")

    class StepCounter(transformers.TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            self.steps += 1

    return StepCounter()


def resumed_schedule():
    """A TrainerCallback for a run resumed with a longer plan (more `--epochs` or `--max-steps`
    than the checkpoint's): its first step runs at the new schedule's learning rate. Without it
    that step runs at the restored optimizer's, the old schedule's last value (0 at the end of a
    linear decay); the scheduler, restored with the new plan's lambda, is right from then on."""
    (transformers,) = require("transformers")

    class ResumedSchedule(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
            lambdas = getattr(lr_scheduler, "lr_lambdas", None)
            if not state.global_step or optimizer is None or lambdas is None:
                return
            lrs = [base * fn(lr_scheduler.last_epoch) for base, fn in zip(lr_scheduler.base_lrs, lambdas)]
            for group, lr in zip(optimizer.param_groups, lrs):
                group["lr"] = lr
            lr_scheduler._last_lr = lrs  # what the trainer logs as this step's learning rate

    return ResumedSchedule()


def last_checkpoint(out: Path) -> str | None:
    """The newest trainer checkpoint under `out/checkpoints` (what `--resume` continues), or None."""
    ckpts = sorted(
        (p for p in (out / "checkpoints").glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return str(ckpts[-1]) if ckpts else None


LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peft_config(opts: TrainOptions, n_layers: int | None = None):
    """A LoRA config on every linear layer (of the last `opts.lora_top_layers` decoder layers when
    set: the backward pass then stops there, which makes CPU training several times cheaper), or
    None for full fine-tuning."""
    if not opts.lora:
        return None
    (peft,) = require("peft")
    layers = {}
    if opts.lora_top_layers:
        if not n_layers:
            raise ValueError("lora_top_layers needs the model's number of layers")
        first = max(0, n_layers - opts.lora_top_layers)
        layers = {"layers_to_transform": list(range(first, n_layers)), "layers_pattern": "layers"}
    return peft.LoraConfig(
        r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        # the linear layers of a decoder block (PEFT takes layers_to_transform only with a list)
        target_modules=LINEAR_MODULES if layers else "all-linear",
        task_type="CAUSAL_LM",
        **layers,
    )


@dataclass
class TrainResult:
    """Where the model went and what training logged."""

    out: str
    steps: int
    train_loss: float | None
    log: list[dict[str, Any]]
    steps_run: int | None = None  # optimizer steps this process ran (a resumed run: only its own)

    @property
    def finite(self) -> bool:
        losses = [e["loss"] for e in self.log if "loss" in e]
        return bool(losses) and all(math.isfinite(x) for x in losses)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finish(trainer, tokenizer, out: Path, opts: TrainOptions, meta: dict[str, Any]) -> TrainResult:
    """Save the final model and tokenizer to `out` (LoRA: adapter in `out/adapter`, merged model in
    `out`), plus `train_result.json`. `trainer.save_model` gathers ZeRO-3/FSDP shards and writes on
    the main process only, so this is safe under `accelerate launch`."""
    target = out / "adapter" if opts.lora else out
    trainer.save_model(str(target))
    main = trainer.accelerator.is_main_process
    if main:
        tokenizer.save_pretrained(out)
        if opts.lora and opts.merge_lora:
            (peft,) = require("peft")
            merged = peft.AutoPeftModelForCausalLM.from_pretrained(str(target), dtype=trainer.model.dtype)
            merged.merge_and_unload().save_pretrained(out)
    log = [dict(e) for e in trainer.state.log_history]
    final = next((e for e in reversed(log) if "train_loss" in e), {})
    counted = [c.steps for c in trainer.callback_handler.callbacks if type(c).__name__ == "StepCounter"]
    result = TrainResult(str(out), trainer.state.global_step, final.get("train_loss"), log, next(iter(counted), None))
    if main:
        (out / "train_result.json").write_text(json.dumps({**result.to_dict(), **meta}, indent=2, default=str))
    return result
