"""The command-line flags of the configs, declared once: derived from the fields of `JudgeConfig`,
`BackendConfig`, the server's `ServerConfig` and training's `TrainOptions` and `MetaRMOptions` (their types, defaults
and `metadata["help"]`, TRL's habit).

A command takes `backend_cfg: BackendConfig`, `judge_cfg: JudgeConfig`, `server_cfg:
ServerConfig`, `train_cfg: TrainOptions` and/or `metarm_cfg: MetaRMOptions` and is decorated with `@config_flags()`: the
decorator adds one typer option per config field to the signature typer reads (backend, judge and
training flags in the help panels *Backend*, *Judge* and *Training*), and calls the function with
the configs built and validated (a bad value exits 2 with the config's message). The function
itself declares only its own flags. A field is `--field-name` (booleans `--name/--no-name`), and
`JudgeConfig.sampling` gives one flag per `Sampling` field; a field without help text is no flag.
`FLAGS` holds only what differs from that rule (short options, a flag name of its own, bounds, an
env var); its keys, and those of `config_flags`' arguments, are a field name or, where two configs
share one, `Class.field` (`TrainOptions.lora`). A new config field is a new flag on every command
at once.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.models import OptionInfo

from .. import models
from ..config import BackendConfig, JudgeConfig
from ..metarm.options import MetaRMOptions
from ..serve.config import ServerConfig
from ..train.common import TrainOptions
from ..types import Sampling
from .common import checked, err, fail


@dataclass(frozen=True)
class Flag:
    """How a config field is spelled where it differs from the rule (`--field-name`, no bounds)."""

    decls: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    envvar: str | None = None
    metavar: str | None = None


FLAGS: dict[str, Flag] = {
    # BackendConfig
    "kind": Flag(("--backend", "-b")),
    "model": Flag(("--model", "-m")),
    "base_urls": Flag(("--base-url",), metavar="URL"),
    "api_key": Flag(envvar="OPENAI_API_KEY"),
    "lora": Flag(metavar="PATH[:SCALE]"),
    "parallel": Flag(min=1),
    "ctx_per_slot": Flag(min=256),
    "threads": Flag(min=1),
    "upstream_timeout": Flag(min=0.001),
    "upstream_retries": Flag(min=0),
    # JudgeConfig (and its Sampling)
    "temperature": Flag(min=0.0),
    "max_tokens": Flag(min=16),
    "max_retries": Flag(min=0),
    "critique_budget": Flag(min=1),
    "principles_budget": Flag(min=1),
    # ServerConfig
    "k": Flag(("-k", "--k"), min=1),
    "max_k": Flag(min=1),
    "k_meta": Flag(min=1),
    "max_batch": Flag(min=1),
    "max_wait_ms": Flag(min=0),
    "max_queue": Flag(min=1),
    "timeout_s": Flag(("--timeout",), min=0.001),
    "max_requests": Flag(min=1),
    "max_responses": Flag(min=1),
    "max_chars": Flag(min=1),
    "workers": Flag(min=1),
    "auth_token": Flag(envvar="REWARDSCALE_API_TOKEN"),
    # TrainOptions
    "TrainOptions.learning_rate": Flag(("--lr",)),
    "TrainOptions.lora": Flag(("--lora/--full",)),
    "TrainOptions.merge_lora": Flag(("--merge/--no-merge",)),
    "TrainOptions.epochs": Flag(min=0.0),
    "batch_size": Flag(min=1),
    "grad_accum": Flag(min=1),
    "lora_r": Flag(min=1),
    "lora_alpha": Flag(min=1),
    "lora_top_layers": Flag(min=1),
    "save_steps": Flag(min=1),
    # MetaRMOptions
    "MetaRMOptions.learning_rate": Flag(("--lr",)),
    "MetaRMOptions.bf16": Flag(("--bf16/--no-bf16",)),
    "max_length": Flag(min=32),
    "val_fraction": Flag(min=0.0, max=0.9),
    "patience": Flag(min=1),
}
# the server's flags stay in the command's own panel
CTX_PARAM = "config_flags_ctx"  # the hidden parameter that receives the command's typer.Context
PANELS = {BackendConfig: "Backend", JudgeConfig: "Judge", TrainOptions: "Training", MetaRMOptions: "Training"}
CONFIG_PARAMS = {
    "backend_cfg": BackendConfig,
    "judge_cfg": JudgeConfig,
    "server_cfg": ServerConfig,
    "train_cfg": TrainOptions,
    "metarm_cfg": MetaRMOptions,
}


def _pick(mapping: Mapping[str, Any], config: type, field: str, default: Any = None) -> Any:
    """The entry for `config`'s `field`: its `Class.field` key, else its plain field key."""
    return mapping.get(f"{config.__name__}.{field}", mapping.get(field, default))


def _excluded(skip: set[str], config: type, field: str) -> bool:
    return field in skip or f"{config.__name__}.{field}" in skip


@dataclass(frozen=True)
class _Field:
    """One config field as a command-line option: `param` in the signature, `field` in `config`
    (`nested`: the dataclass field it sits in and its class, `("sampling", Sampling)` for the
    Sampling fields of JudgeConfig)."""

    config: type
    field: str
    nested: tuple[str, type] | None
    param: inspect.Parameter
    to_value: Callable[[Any], Any]


def flag_name(field: str) -> str:
    """The long option of a config field (`critique_budget` -> `--critique-budget`)."""
    return _long(FLAGS.get(field, Flag()).decls) or "--" + field.replace("_", "-")


def _long(decls: Iterable[str]) -> str | None:
    """The first long option of `decls` (of a `--on/--off` pair, the `--on`)."""
    return next((d.split("/")[0] for d in decls if d.startswith("--")), None)


def cli_help(text: str) -> str:
    """A field's help as the command line reads it: field names become flags (`force_verdict`
    -> `--force-verdict`); names without an underscore are left alone (plain words)."""
    names = [f for f in _all_fields() if "_" in f]
    return re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: flag_name(m.group(1)), text) if names else text


def _all_fields() -> list[str]:
    out = []
    for cls in (BackendConfig, JudgeConfig, Sampling):
        out += [f.name for f in dataclasses.fields(cls)]
    return out


def _option_type(hint: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The type typer parses a field as, and how its value becomes the field's (a tuple field is
    a repeatable option)."""
    if typing.get_origin(hint) is tuple:
        return list[str], lambda v: tuple(v or ())
    return hint, lambda v: v


def _fields(config: type, exclude: set[str], decls, helps, base: Any):
    """The flags of `config`'s fields; `base`: the instance whose values are the flag defaults."""
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):  # JudgeConfig.sampling: one flag per Sampling field
            inner = typing.get_type_hints(hint)
            for g in dataclasses.fields(hint):
                if not _excluded(exclude, hint, g.name):
                    values = getattr(base, f.name)
                    yield _make(config, g, inner[g.name], (f.name, hint), decls, helps, values)
        elif not _excluded(exclude, config, f.name) and "help" in f.metadata:
            yield _make(config, f, hint, None, decls, helps, base)


def _make(config, f: dataclasses.Field, hint, nested, decls, helps, base: Any) -> _Field:
    owner = nested[1] if nested else config
    spec = _pick(FLAGS, owner, f.name, Flag())
    names = tuple(_pick(decls, owner, f.name, ())) or spec.decls or (flag_name(f.name),)
    kind, to_value = _option_type(hint)
    long = _long(names) or names[0]
    if kind is bool and not any("/" in n for n in names):
        names = (f"{long}/--no-{long.removeprefix('--')}", *(n for n in names if n != long))
    default = getattr(base, f.name)
    if isinstance(default, tuple):
        default = ()
    text = _pick(helps, owner, f.name) or cli_help(f.metadata.get("help", ""))
    if kind == list[str]:
        text += " Repeatable."
    option = typer.Option(
        *names,
        help=text,
        min=spec.min,
        max=spec.max,
        envvar=spec.envvar,
        metavar=spec.metavar,
        rich_help_panel=PANELS.get(config),
    )
    name = long.removeprefix("--").replace("-", "_")  # the flag's: --sampler-lora, sampler_lora
    param = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option])
    return _Field(config, f.name, nested, param, to_value)


def _own_flags(params: Iterable[inspect.Parameter]) -> set[str]:
    """The option names a command declares itself (to refuse a derived flag that would clash)."""
    out: set[str] = set()
    for p in params:
        infos = [p.default, *getattr(p.annotation, "__metadata__", ())]
        for info in infos:
            for decl in getattr(info, "param_decls", None) or ():
                out.update(d for part in decl.split("/") for d in [part.strip()] if d)
            if isinstance(info, OptionInfo) and isinstance(info.default, str):
                out.add(info.default)  # Annotated style: the first name sits in `default`
    return out


def config_flags(
    *,
    exclude: Iterable[str] = (),
    decls: Mapping[str, tuple[str, ...]] | None = None,
    help: Mapping[str, str] | None = None,
    defaults: Iterable[Any] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the flags of the configs its function takes (`backend_cfg`, `judge_cfg`,
    `server_cfg`, `train_cfg`, `metarm_cfg`).

    exclude: fields the command does not offer (it keeps the config's default, or sets the field
        itself, e.g. `train rft` picks the sampler's backend); a command's own flag of the same
        name must be excluded, or this raises at import time.
    decls: another spelling for a field on this command (`{"lora": ("--sampler-lora",)}`).
    help: another help text for a field on this command.
    defaults: config instances whose values are this command's defaults (`SFT_DEFAULTS` for
        `train rft`); the config is built from it, so its fields without a flag keep its values.
    """
    skip, spelled, helps = set(exclude), dict(decls or {}), dict(help or {})
    bases = {type(d): d for d in defaults}

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn, eval_str=True)
        configs = [CONFIG_PARAMS[name] for name in signature.parameters if name in CONFIG_PARAMS]
        if not configs:
            raise TypeError(f"{fn.__name__} takes none of {', '.join(CONFIG_PARAMS)}: nothing to derive")
        own = [p for name, p in signature.parameters.items() if name not in CONFIG_PARAMS]
        unknown = set(bases) - set(configs)
        if unknown:
            raise TypeError(f"{fn.__name__} takes no {', '.join(sorted(c.__name__ for c in unknown))}: no defaults")
        derived = [d for cls in configs for d in _fields(cls, skip, spelled, helps, bases.get(cls) or cls())]
        twice = sorted({d.param.name for d in derived if sum(e.param.name == d.param.name for e in derived) > 1})
        if twice:
            raise TypeError(
                f"{fn.__name__}: {', '.join(twice)} is a field of two configs: "
                "exclude one (`Class.field`) or spell it otherwise with decls="
            )
        names, flags = {p.name for p in own}, _own_flags(own)
        clash = sorted(d.field for d in derived if d.param.name in names or _declared(d.param) & flags)
        if clash:
            raise TypeError(
                f"{fn.__name__} declares {', '.join(map(flag_name, clash))} itself: "
                f"exclude {', '.join(clash)} (or spell it otherwise with decls=)"
            )

        picks_model = any(d.config is BackendConfig and d.field == "model" for d in derived)

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            ctx = kwargs.pop(CTX_PARAM, None)
            settings: dict[type, dict[str, Any]] = {cls: {} for cls in configs}
            nested: dict[tuple[type, str, type], dict[str, Any]] = {}
            for d in derived:
                value = d.to_value(kwargs.pop(d.param.name))
                if d.nested:
                    nested.setdefault((d.config, *d.nested), {})[d.field] = value
                else:
                    settings[d.config][d.field] = value
            for (cls, name, inner), values in nested.items():  # JudgeConfig.sampling = Sampling(...)
                settings[cls][name] = checked(inner, **values)
            for name, cls in CONFIG_PARAMS.items():
                if cls in bases:
                    kwargs[name] = checked(dataclasses.replace, bases[cls], **settings[cls])
                elif cls is JudgeConfig and picks_model and cls in settings:
                    kwargs[name] = _judge_config(kwargs["backend_cfg"], settings[cls], derived, ctx)
                elif cls in settings:
                    kwargs[name] = checked(cls, **settings[cls])
            if picks_model and "judge_cfg" in kwargs:  # a command that picks its model itself applies none
                kwargs["judge_cfg"] = _model_defaults(kwargs["backend_cfg"], kwargs["judge_cfg"], derived, ctx)
            return fn(**kwargs)

        # typer hands a parameter typed typer.Context the command's context (where each value came from)
        ctx_param = inspect.Parameter(CTX_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        params = own + [d.param for d in derived] + [ctx_param]
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def _explicit(derived: Sequence[_Field], ctx: typer.Context) -> set[str]:
    """The judge fields the user set on the command line (their flag's value is not its default)."""
    return {
        d.field
        for d in derived
        if d.config is JudgeConfig and getattr(ctx.get_parameter_source(d.param.name), "name", "") != "DEFAULT"
    }


def _judge_config(
    backend: BackendConfig, values: dict[str, Any], derived: Sequence[_Field], ctx: typer.Context | None
) -> JudgeConfig:
    """The judge config from its flags' values. A flag that needs another setting the embedded
    model supplies (`--compare-answers` needs `--code-check`, which the default judge sets)
    is valid with the model's settings in every flag left at its default, so where the flags
    alone are not valid, that combination is tried before the flags' own error is given."""
    try:
        return JudgeConfig(**values)
    except ValueError as error:
        settings = backend.judge_defaults if ctx is not None else {}
        if not settings:
            fail(str(error))
        explicit = _explicit(derived, ctx)
        merged, sampling = dict(values), {f.name for f in dataclasses.fields(Sampling)}
        for name, value in settings.items():
            if name in sampling and name not in explicit:
                merged["sampling"] = dataclasses.replace(merged["sampling"], **{name: value})
            elif name not in explicit:
                merged[name] = value
        try:
            return JudgeConfig(**merged)
        except ValueError:
            fail(str(error))


def _model_defaults(
    backend: BackendConfig, judge: JudgeConfig, derived: Sequence[_Field], ctx: typer.Context | None
) -> JudgeConfig:
    """The judge with its embedded model's own settings (`models.judge_settings`) in every judge
    flag the user left at its default; says which on stderr. Without a context (a command called
    as a function) every flag counts as set."""
    settings = backend.judge_defaults
    if not settings or ctx is None:
        return judge
    explicit = _explicit(derived, ctx)
    configured = checked(judge.with_model_defaults, settings, explicit)
    applied = {k: v for k, v in settings.items() if k not in explicit and configured.setting(k) == v}
    if applied:
        shown = " ".join(flag_name(k) if v is True else f"{flag_name(k)} {v}" for k, v in applied.items())
        err.print(
            f"{backend.model or models.DEFAULT_MODEL}: its judge settings {shown} (a flag overrides)",
            markup=False,
            highlight=False,
            style="dim",
        )
    return configured


def _declared(param: inspect.Parameter) -> set[str]:
    (info,) = param.annotation.__metadata__
    return {part for decl in info.param_decls for part in decl.split("/")} | (
        {info.default} if isinstance(info.default, str) else set()
    )
