"""Supervised fine-tuning on RFT's kept records with TRL's SFTTrainer (full or LoRA).

Records are conversational prompt/completion pairs, so the loss covers only the judge's
trajectory (TRL's completion-only loss), never the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import (
    TrainOptions,
    TrainResult,
    dtype_name,
    finish,
    last_checkpoint,
    peft_config,
    resumed_schedule,
    step_counter,
    trainer_args,
)
from .deps import require
from .model import resolve_model

SFT_DEFAULTS = TrainOptions(learning_rate=1e-5, epochs=2.0, batch_size=1, grad_accum=8)
MAX_LENGTH = 4096


def train_sft(
    model: str,
    records: Sequence[dict[str, Any]],
    out: Path,
    opts: TrainOptions | None = None,
    max_length: int = MAX_LENGTH,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune `model` (HF dir/id, .gguf, embedded name) on prompt/completion `records`; save to `out`.

    `resume` continues from the newest checkpoint in `out/checkpoints` (optimizer, scheduler, data
    order and step restored by the Trainer), or starts fresh when there is none."""
    opts = opts or SFT_DEFAULTS
    if not records:
        raise ValueError("no training records: RFT kept nothing (see the report); nothing to fine-tune on")
    _, transformers, trl, _, datasets, _ = require()
    out = Path(out)
    path = resolve_model(model, out, dtype_name(opts.dtype))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    n_layers = transformers.AutoConfig.from_pretrained(path).num_hidden_layers
    data = datasets.Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in records])
    kwargs = trainer_args(opts, out)
    # load the policy here, in the dtype asked for: TRL otherwise keeps the checkpoint's own dtype
    # (a GGUF dequantised to bf16 trained in bf16 even with --dtype float32, 190x slower on AVX2)
    (torch,) = require("torch")
    dtype = getattr(torch, kwargs.pop("model_init_kwargs")["dtype"])
    policy = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    args = trl.SFTConfig(**kwargs, max_length=max_length, completion_only_loss=True)
    trainer = trl.SFTTrainer(
        model=policy,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=peft_config(opts, n_layers),
        callbacks=[step_counter(), resumed_schedule()],
    )
    checkpoint = last_checkpoint(out) if resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    meta = {"stage": "rft-sft", "base_model": model, "records": len(records), "resumed_from": checkpoint}
    return finish(trainer, tokenizer, out, opts, meta)
