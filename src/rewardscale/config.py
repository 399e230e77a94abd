"""The judge's settings and the backend's, one dataclass each, validated once.

`JudgeConfig` holds everything that decides what the judge samples and how it votes (sampling,
seed, shuffling, retries, the verdict options, the score mode); `GRM(backend, JudgeConfig(...))`
reads it and nothing else, and `JudgeConfig.check(backend)` is the one place its options are
checked against what a backend can do. `BackendConfig` holds what builds a backend (engine, model,
servers, key, slots, threads, how a server constrains); `build_backend` turns it into one. The
CLI commands build both from their flags and hand them to `cli.common.build_grm`.

Each field carries its help text in `metadata["help"]` (TRL's `*Config` habit).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from . import models
from .backends import BACKENDS, Backend, capabilities_of, make_backend
from .backends.engine_info import CTX_PER_SLOT
from .errors import RewardscaleError
from .principles import PRINCIPLE_MODES
from .types import Sampling
from .verdict import CHARS_PER_TOKEN, VERDICT_CONSTRAINTS, can_constrain_format, can_force

SCORE_MODES = ("integer", "expected")


class ConfigError(RewardscaleError, ValueError):
    """A setting out of range, or one the chosen backend cannot honour."""


def help_field(text: str, **kw: Any) -> Any:
    """A dataclass field that carries its command-line help (`cli.options.config_flags` reads it)."""
    return field(metadata={"help": text}, **kw)


@dataclass(frozen=True)
class JudgeConfig:
    """How the GRM samples, parses and votes; see the field help and `GRM`."""

    sampling: Sampling = help_field(
        "Decoding parameters of every sample (paper: temperature 0.5).", default_factory=Sampling
    )
    seed: int = help_field("Seed for permutations, sampling and tie-breaks; same seed, same plan.", default=0)
    shuffle: bool = help_field("Position-balanced shuffled response orders (the paper shuffles).", default=True)
    max_retries: int = help_field("Redraws of a sample whose verdict does not parse, before it abstains.", default=2)
    lenient: bool = help_field(
        "Recover near-miss verdicts (status 'recovered') instead of failing them.", default=False
    )
    force_verdict: bool = help_field(
        "Continue a sample that ended without a valid verdict with `Scores: \\boxed{` under a constraint "
        "(status 'forced'); needs a backend that constrains (llamacpp; openai with a verdict constraint).",
        default=False,
    )
    critique_budget: int | None = help_field(
        "With force_verdict: tokens the generation may take before its verdict is forced.", default=None
    )
    verdict_in_slot: bool = help_field(
        "With force_verdict and critique_budget: generate each sample under a grammar that ends its text at "
        "the budget (4 characters a token) with a verdict, in the same decode, instead of a second pass that "
        "prefills the sample again (a sample that stops early without a verdict still gets one); needs a "
        "backend that generates under a grammar (llamacpp; openai with verdict_constraint grammar).",
        default=False,
    )
    constrain_format: bool = help_field(
        "Generate every sample under a grammar for the whole three-part format (llamacpp; openai with a "
        "verdict constraint).",
        default=False,
    )
    score_mode: str = help_field(
        "integer (the paper: sampled scores are summed) or expected (probability-weighted scores from the "
        "verdict's logprobs; needs llamacpp, or openai with a verdict constraint).",
        default="integer",
    )
    principles: str = help_field(
        "joint (the paper: criteria, analysis and scores in one generation), blind (each sample first "
        "writes its criteria from the conversation alone, before it sees a response) or shared (one such "
        "draft per request, reused by its k samples). Blind and shared need a backend that continues an "
        "assistant prefix (llamacpp, transformers; openai with a verdict constraint).",
        default="joint",
    )
    principles_budget: int = help_field("Token limit of a blind or shared principles draft.", default=160)
    code_check: int = help_field(
        "Programs per request the judge writes from the conversation alone to compute the right answer; "
        "each runs isolated (rewardscale.codecheck) and the output most of them print is shown to every "
        "sample as a checked fact (0: off). Runs model-written Python on this machine.",
        default=0,
    )
    code_budget: int = help_field("Token limit of a code-check program draft.", default=192)
    compare_answers: bool = help_field(
        "With code_check: a rule compares each response's final answer with the checked output and the prompt "
        "states the result (rewardscale.answers), so the judge need not compare numbers itself.",
        default=False,
    )
    form_facts: bool = help_field(
        "When the user's message asks about the form of the answer (words, sentences, bullet points, "
        "paragraphs, capital letters, characters, commas, JSON), a rule counts it in each response and the "
        "prompt states the counts (rewardscale.forms).",
        default=False,
    )
    decline_facts: bool = help_field(
        'When a response declines the request ("I can\'t help with that"), the prompt says which responses '
        "decline, and that declining is right only for requests to harm, deceive, spy or break the law "
        "(rewardscale.declines).",
        default=False,
    )

    def __post_init__(self) -> None:
        if not isinstance(self.sampling, Sampling):
            raise ConfigError(f"sampling must be a Sampling, got {type(self.sampling).__name__}")
        s = self.sampling
        if s.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {s.temperature}")
        if not 0 < s.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {s.top_p}")
        if s.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {s.max_tokens}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.critique_budget is not None and self.critique_budget < 1:
            raise ConfigError(f"critique_budget must be >= 1 token, got {self.critique_budget}")
        if self.score_mode not in SCORE_MODES:
            raise ConfigError(f"score_mode must be one of {', '.join(SCORE_MODES)}, got {self.score_mode!r}")
        if self.principles not in PRINCIPLE_MODES:
            raise ConfigError(f"principles must be one of {', '.join(PRINCIPLE_MODES)}, got {self.principles!r}")
        if self.principles_budget < 1:
            raise ConfigError(f"principles_budget must be >= 1 token, got {self.principles_budget}")
        if self.code_check < 0:
            raise ConfigError(f"code_check must be >= 0 programs, got {self.code_check}")
        if self.code_budget < 1:
            raise ConfigError(f"code_budget must be >= 1 token, got {self.code_budget}")
        if self.compare_answers and self.code_check < 1:
            raise ConfigError("compare_answers compares responses with a code-checked output: it needs code_check >= 1")
        if self.verdict_in_slot and not (self.force_verdict and self.critique_budget is not None):
            raise ConfigError(
                "verdict_in_slot forces the verdict at the critique budget: it needs force_verdict and critique_budget"
            )
        if self.verdict_in_slot and self.constrain_format:
            raise ConfigError("verdict_in_slot and constrain_format are two grammars for one generation: choose one")
        if self.constrain_format and self.principles != "joint":
            raise ConfigError("constrain_format generates the whole three-part text; it cannot follow blind principles")

    def check(self, backend: object) -> None:
        """Raise ConfigError for an option `backend` cannot honour (the one capability check: a
        setting is either used or refused, never silently dropped)."""
        constrained = "llamacpp; openai with verdict_constraint grammar, vllm or sglang"
        if self.force_verdict and not can_force(backend):
            raise ConfigError(
                f"force_verdict needs a backend that decodes a constrained verdict ({constrained}); "
                f"{_name(backend)} cannot: drop it (unparsed samples are then redrawn, up to max_retries)"
            )
        if self.score_mode == "expected" and not can_force(backend):
            raise ConfigError(
                f"score_mode 'expected' needs a backend that returns verdict logprobs ({constrained}); "
                f"{_name(backend)} cannot"
            )
        if self.principles != "joint" and not capabilities_of(backend).continuation:
            raise ConfigError(
                f"principles {self.principles!r} needs a backend that continues an assistant prefix (llamacpp, "
                f"transformers; openai with verdict_constraint grammar, vllm or sglang); {_name(backend)} cannot"
            )
        if self.verdict_in_slot and not can_constrain_format(backend):
            raise ConfigError(
                f"verdict_in_slot needs a backend that generates under a grammar ({constrained}); "
                f"{_name(backend)} cannot: drop it (verdicts are then forced in a second pass)"
            )
        if self.constrain_format and not can_constrain_format(backend):
            raise ConfigError(
                f"constrain_format needs a backend that generates under a grammar ({constrained}); "
                f"{_name(backend)} cannot"
            )

    @property
    def generation_sampling(self) -> Sampling:
        """The sampling of the main generation: `critique_budget` caps its tokens when verdicts
        are forced (what has no verdict by then gets a forced one); with `verdict_in_slot` the
        grammar ends the text at the budget instead, so the token limit stays the sampling's."""
        if self.force_verdict and self.critique_budget is not None and not self.verdict_in_slot:
            return replace(self.sampling, max_tokens=min(self.sampling.max_tokens, self.critique_budget))
        return self.sampling

    @property
    def principles_sampling(self) -> Sampling:
        """The sampling of a principles draft: the samples', capped at `principles_budget` tokens."""
        return replace(self.sampling, max_tokens=min(self.sampling.max_tokens, self.principles_budget))

    @property
    def budget_chars(self) -> int | None:
        """With `verdict_in_slot`: the characters a sample's text may take before its verdict."""
        return self.critique_budget * CHARS_PER_TOKEN if self.verdict_in_slot and self.critique_budget else None

    @property
    def code_sampling(self) -> Sampling:
        """The sampling of a code-check program: the samples', capped at `code_budget` tokens."""
        return replace(self.sampling, max_tokens=min(self.sampling.max_tokens, self.code_budget))

    @property
    def needs_verdict_pass(self) -> bool:
        """Whether samples get a second, constrained decode (forced verdicts or expected scores)."""
        return self.force_verdict or self.score_mode == "expected"

    def with_overrides(self, **overrides: Any) -> JudgeConfig:
        """A copy with some fields replaced (validated again); unknown names raise TypeError."""
        if not overrides:
            return self
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown judge setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return replace(self, **overrides)

    def with_model_defaults(self, settings: Mapping[str, Any], explicit: Collection[str] = ()) -> JudgeConfig:
        """A copy with a model's own judge settings (`models.judge_settings`) in every field not
        in `explicit` (the fields the user set); `max_tokens`, `temperature` and `top_p` are the
        sampling's. A setting that cannot go with what the user set (blind principles with
        `constrain_format`) is left out. Unknown names raise TypeError (a model card that names a
        field that is gone)."""
        sampling_names = {f.name for f in fields(Sampling)}
        config = self
        for name, value in settings.items():
            if name in explicit:
                continue
            change = (
                {"sampling": replace(config.sampling, **{name: value})} if name in sampling_names else {name: value}
            )
            try:
                config = config.with_overrides(**change)
            except ConfigError:
                continue
        return config

    def setting(self, name: str) -> Any:
        """A field's value by name; `max_tokens`, `temperature` and `top_p` are the sampling's."""
        return getattr(self.sampling if name in {f.name for f in fields(Sampling)} else self, name)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["sampling"] = self.sampling.to_dict()
        return d


def _name(backend: object) -> str:
    """The backend as an error message names it: its class and how it constrains verdicts."""
    return f"{type(backend).__name__} (verdict_constraint {capabilities_of(backend).verdict_constraint})"


@dataclass(frozen=True)
class BackendConfig:
    """What builds a backend (`build_backend`); options that do not apply to `kind` are ignored."""

    kind: str = help_field(f"One of: {', '.join(BACKENDS)}.", default="llamacpp")
    model: str | None = help_field(
        "Embedded model name or GGUF path (llamacpp, default: the embedded judge), served model name "
        "(openai), HF dir/id or GGUF file (transformers).",
        default=None,
    )
    base_urls: tuple[str, ...] = help_field("openai: OpenAI-compatible server URLs (round-robin).", default=())
    api_key: str | None = field(default=None, repr=False, metadata={"help": "openai: bearer token."})
    lora: tuple[tuple[str, float], ...] = help_field(
        "llamacpp: GGUF LoRA adapter files, PATH[:SCALE] (scale 1 by default), applied on top of the model "
        "(and of an embedded judge's own adapter); each file's name and sha256 become part of the model id.",
        default=(),
    )
    parallel: int = help_field("llamacpp: sequences decoded together.", default=8)
    ctx_per_slot: int = help_field(
        "llamacpp: tokens of prompt + completion one sequence may hold (each slot has its own KV cache this size).",
        default=CTX_PER_SLOT,
    )
    threads: int | None = help_field(
        "llamacpp: CPU threads (default: all cores; 1 helps on a busy machine).", default=None
    )
    verdict_constraint: str = help_field(
        f"openai: how the server constrains a verdict: {', '.join(VERDICT_CONSTRAINTS)}.", default="none"
    )
    upstream_timeout: float | None = help_field(
        "openai: seconds one HTTP attempt may take (default 600).", default=None
    )
    upstream_retries: int = help_field("openai: retries of a failed HTTP attempt.", default=5)
    concurrency: int = help_field(
        "openai: requests in flight at once; set it above the fleet's concurrent sequences so none waits on a "
        "round trip.",
        default=16,
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "base_urls", tuple([self.base_urls] if isinstance(self.base_urls, str) else self.base_urls)
        )
        if self.kind not in BACKENDS:
            raise ConfigError(f"unknown backend {self.kind!r}; choose one of: {', '.join(BACKENDS)}")
        if self.lora and self.kind != "llamacpp":
            raise ConfigError(
                f"lora (GGUF LoRA adapters) needs the llamacpp backend, not {self.kind}: load the adapter into the "
                "server behind the base URL (openai), or use the merged checkpoint (transformers)"
            )
        object.__setattr__(self, "lora", parse_loras(self.lora))
        if self.verdict_constraint not in VERDICT_CONSTRAINTS:
            raise ConfigError(
                f"unknown verdict constraint {self.verdict_constraint!r}; "
                f"choose one of: {', '.join(VERDICT_CONSTRAINTS)}"
            )
        if self.parallel < 1:
            raise ConfigError(f"parallel must be >= 1, got {self.parallel}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.ctx_per_slot < 256:
            raise ConfigError(f"ctx_per_slot must be >= 256 tokens, got {self.ctx_per_slot}")
        if self.upstream_timeout is not None and self.upstream_timeout <= 0:
            raise ConfigError(f"upstream_timeout must be > 0 seconds, got {self.upstream_timeout}")
        if self.upstream_retries < 0:
            raise ConfigError(f"upstream_retries must be >= 0, got {self.upstream_retries}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")

    @cached_property
    def model_id(self) -> str | None:
        """The model id the backend built from this config reports (part of every store key);
        added LoRA adapters are part of it (`models.lora_model_id`)."""
        if self.kind == "llamacpp":  # as make_backend derives it
            base = models.store_id(self.model or models.DEFAULT_MODEL)
            return models.lora_model_id(base, self.lora) if self.lora else base
        return self.model

    @property
    def judge_defaults(self) -> dict[str, Any]:
        """The judge settings of the embedded judge this builds (llamacpp; `models.judge_settings`),
        {} otherwise."""
        return models.judge_settings(self.model) if self.kind == "llamacpp" else {}

    def options(self) -> dict[str, Any]:
        """The keyword arguments `rewardscale.backends.make_backend(self.kind, ...)` takes."""
        if self.kind == "llamacpp":
            opts: dict[str, Any] = {
                "model": self.model or models.DEFAULT_MODEL,
                "parallel": self.parallel,
                "ctx_per_slot": self.ctx_per_slot,
            }
            if self.threads:
                opts["threads"] = self.threads
            if self.lora:
                opts["lora"] = list(self.lora)
                opts["model_id"] = self.model_id
            return opts
        if self.kind == "openai":
            return {
                "base_url": list(self.base_urls),
                "model": self.model,
                "api_key": self.api_key,
                "verdict_constraint": self.verdict_constraint,
                "timeout": self.upstream_timeout or 600.0,
                "max_retries": self.upstream_retries,
                "concurrency": self.concurrency,
            }
        return {"model": self.model}


def parse_loras(lora: Any) -> tuple[tuple[str, float], ...]:
    """`BackendConfig.lora` as ((path, scale), ...): each item `PATH[:SCALE]` or (path, scale);
    one such item alone is taken as a list of one."""
    if isinstance(lora, str) or (len(lora) == 2 and isinstance(lora[0], str) and isinstance(lora[1], (int, float))):
        lora = (lora,)
    return tuple(parse_lora(a) for a in lora)


def parse_lora(adapter: str | tuple[str, float] | list) -> tuple[str, float]:
    """One LoRA adapter as (path, scale), from llama.cpp's `PATH[:SCALE]` or a (path, scale) pair;
    ConfigError for a missing file (named) or a scale that is not a finite number. A path that
    is itself an existing file is taken whole (a colon in a file name is not a scale)."""
    if isinstance(adapter, str):
        path, sep, text = adapter.rpartition(":")
        if not sep or Path(adapter).is_file():
            path, text = adapter, "1"
        try:
            scale = float(text)
        except ValueError:
            raise ConfigError(
                f"lora {adapter}: {text!r} is not a scale (PATH[:SCALE], e.g. adapter.gguf:0.5), "
                f"and there is no file at {adapter}"
            ) from None
    elif isinstance(adapter, (tuple, list)) and len(adapter) == 2:
        path, scale = adapter
    else:
        raise ConfigError(f"a lora adapter is 'PATH[:SCALE]' or (path, scale), got {adapter!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ConfigError(f"lora {path}: the scale must be a finite number, got {scale!r}")
    path = str(path)
    if not path:
        raise ConfigError(f"lora {adapter!r}: no path (PATH[:SCALE])")
    if not Path(path).is_file():
        raise ConfigError(f"lora: no GGUF LoRA adapter file at {path}")
    return path, float(scale)


def build_backend(config: BackendConfig) -> Backend:
    """The backend `config` describes (`make_backend` does the building; an embedded model is
    assembled from its PyPI parts on first use)."""
    return make_backend(config.kind, **config.options())
