"""Rule-based online RL, SPCT's second stage: TRL's GRPOTrainer with a +1/-1 correctness reward.

Each labelled example becomes one scoring prompt (responses shown in an order that is
position-balanced across the data set, from a recorded seed; the permutation kept in the row;
the rule sections of a judge config, as scoring shows them).
GRPO draws a group of completions per prompt; `grm_reward` parses each one strictly, maps its
scores back to the original order and applies the shared rule: +1 when correct, -1 otherwise
(a tie for first, a wrong rating, or an unparseable output).
The KL penalty to the reference model is set explicitly (paper: beta 0.08; TRL's default is 0).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import JudgeConfig
from ..correctness import GOOD_THRESHOLD, Label, reward
from ..examples import Example
from ..template import parse
from ..types import to_original
from .common import (
    TrainOptions,
    TrainResult,
    dtype_name,
    finish,
    peft_config,
    resumed_schedule,
    step_counter,
    trainer_args,
)
from .data import training_prompts
from .deps import require
from .model import resolve_model


@dataclass
class GRPOSettings:
    """GRPO-specific settings. Paper: group size 4, KL coefficient 0.08."""

    num_generations: int = 4  # group size (paper)
    beta: float = 0.08  # KL coefficient (paper); TRL's default is 0.0, so always set here
    temperature: float = 1.0
    max_completion_length: int = 1024
    lenient: bool = False  # strict parsing is the rule; lenient counts near-misses as parsed
    use_vllm: bool = False  # generation with vLLM (colocated) where installed
    vllm_gpu_memory_utilization: float = 0.3


RL_DEFAULTS = TrainOptions(learning_rate=1e-6, epochs=1.0, batch_size=4, grad_accum=8)


def rl_rows(examples: Sequence[Example], seed: int = 0, judge: JudgeConfig | None = None) -> list[dict[str, Any]]:
    """One GRPO row per example: the chat prompt (with `judge`'s rule sections), the shown order,
    the label (JSON)."""
    return [
        {"prompt": messages, "permutation": list(permutation), "label": json.dumps(ex.label.to_dict())}
        for ex, (messages, permutation) in zip(examples, training_prompts(examples, seed, judge))
    ]


def completion_text(completion: Any) -> str:
    """TRL passes conversational completions as message lists, plain ones as strings."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if m.get("role", "assistant") == "assistant")


def score_completion(text: str, permutation: Sequence[int], label: Label, lenient: bool = False) -> float:
    """+1 / -1 for one completion: strict parse, scores back to original order, the shared rule."""
    parsed = parse(text, len(permutation), lenient=lenient)
    scores = None if parsed.scores is None else to_original(parsed.scores, permutation)
    return reward(scores, label, GOOD_THRESHOLD)


def make_reward_fn(lenient: bool = False):
    """The reward function GRPOTrainer calls with the batch's completions and dataset columns."""

    def grm_correctness(prompts, completions, permutation, label, **_) -> list[float]:
        return [
            score_completion(completion_text(c), perm, Label.from_dict(json.loads(lab)), lenient)
            for c, perm, lab in zip(completions, permutation, label)
        ]

    return grm_correctness


def train_grpo(
    model: str,
    examples: Sequence[Example],
    out: Path,
    opts: TrainOptions | None = None,
    grpo: GRPOSettings | None = None,
    data_seed: int = 0,
    judge: JudgeConfig | None = None,
) -> TrainResult:
    """GRPO on `model` (HF dir/id, .gguf, embedded name) over `examples`; final model saved to `out`.
    `judge`: the scoring config whose rule sections the prompts carry (None: plain prompts)."""
    opts = opts or RL_DEFAULTS
    grpo = grpo or GRPOSettings()
    if not examples:
        raise ValueError("no training examples")
    if (opts.batch_size * opts.grad_accum) % grpo.num_generations:
        raise ValueError(
            f"batch size x grad accumulation ({opts.batch_size} x {opts.grad_accum}) must be a multiple of the "
            f"group size {grpo.num_generations}"
        )
    rows = rl_rows(examples, data_seed, judge)  # before the heavy imports: a bad config fails at once
    _, transformers, trl, _, datasets, _ = require()
    if grpo.use_vllm:
        require("vllm")
    out = Path(out)
    path = resolve_model(model, out, dtype_name(opts.dtype))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    data = datasets.Dataset.from_list(rows)
    extra: dict[str, Any] = {}
    if grpo.use_vllm:
        extra = {
            "use_vllm": True,
            "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": grpo.vllm_gpu_memory_utilization,
        }
    args = trl.GRPOConfig(
        **trainer_args(opts, out),
        num_generations=grpo.num_generations,
        beta=grpo.beta,
        temperature=grpo.temperature,
        max_completion_length=grpo.max_completion_length,
        **extra,
    )
    trainer = trl.GRPOTrainer(
        model=path,
        reward_funcs=make_reward_fn(grpo.lenient),
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=peft_config(opts),
        callbacks=[step_counter(), resumed_schedule()],
    )
    trainer.train()
    meta = {"stage": "rl-grpo", "base_model": model, "examples": len(examples), "grpo": grpo.__dict__}
    return finish(trainer, tokenizer, out, opts, meta)
