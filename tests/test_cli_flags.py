"""The judge/backend flags are derived once from JudgeConfig and BackendConfig (`cli.options.
config_flags`): every command that builds a judge shows the same flags, with the same names,
short options, defaults and env var as before, and hands its function ready configs."""

from __future__ import annotations

import dataclasses
import re
import types

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

import rewardscale.cli as cli
import rewardscale.cli.common as cli_common
from rewardscale import models
from rewardscale.cli.options import config_flags, flag_name
from rewardscale.config import BackendConfig, JudgeConfig
from rewardscale.train.common import TrainOptions
from rewardscale.types import Sampling

BACKEND = {
    "--backend": ("-b", "llamacpp"),
    "--model": ("-m", None),
    "--base-url": (None, ()),
    "--api-key": (None, None),
    "--lora": (None, ()),
    "--parallel": (None, 8),
    "--ctx-per-slot": (None, 8192),
    "--threads": (None, None),
    "--verdict-constraint": (None, "none"),
    "--upstream-timeout": (None, None),
    "--upstream-retries": (None, 5),
}
JUDGE = {
    "--temperature": (None, 0.5),
    "--top-p": (None, 1.0),
    "--max-tokens": (None, 1024),
    "--seed": (None, 0),
    "--shuffle": (None, True),
    "--max-retries": (None, 2),
    "--lenient": (None, False),
    "--force-verdict": (None, False),
    "--critique-budget": (None, None),
    "--constrain-format": (None, False),
    "--score-mode": (None, "integer"),
    "--principles": (None, "joint"),
    "--principles-budget": (None, 160),
}


def options(*path: str) -> dict:
    command = get_command(cli.app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {o: p for p in command.params if p.param_type_name == "option" for o in p.opts}


@pytest.mark.parametrize("command", [("score",), ("bench",), ("serve",)])
def test_every_judge_command_has_every_flag_with_its_short_option_and_default(command):
    opts = options(*command)
    for flag, (short, default) in {**BACKEND, **JUDGE}.items():
        assert flag in opts, f"{command[0]} lacks {flag}"
        if short:
            assert short in opts[flag].opts
        assert (tuple(opts[flag].default) if isinstance(default, tuple) else opts[flag].default) == default, flag
    assert opts["--api-key"].envvar == "OPENAI_API_KEY"
    assert "--no-shuffle" in opts["--shuffle"].secondary_opts


SERVER = {  # flag: (short option, default, lower bound, env var), as serve declared them by hand
    "--k": ("-k", 4, 1, None),
    "--max-k": (None, 64, 1, None),
    "--k-meta": (None, None, 1, None),
    "--max-batch": (None, 32, 1, None),
    "--max-wait-ms": (None, 10.0, 0, None),
    "--max-queue": (None, 4096, 1, None),
    "--timeout": (None, 600.0, 0.001, None),
    "--max-requests": (None, 1024, 1, None),
    "--max-responses": (None, 64, 1, None),
    "--max-chars": (None, 100_000, 1, None),
    "--reward-scale": (None, "unit", None, None),
    "--abstain-reward": (None, 0.0, None, None),
    "--workers": (None, 4, 1, None),
    "--auth-token": (None, None, None, "REWARDSCALE_API_TOKEN"),
}


def test_serve_flags_come_from_server_config_as_they_were():
    opts = options("serve")
    for flag, (short, default, low, envvar) in SERVER.items():
        assert flag in opts, flag
        assert (short is None or short in opts[flag].opts) and opts[flag].default == default, flag
        assert getattr(opts[flag], "min", None) == low and opts[flag].envvar == envvar, flag
    for flag in ("--host", "--port", "-p", "--meta-rm", "--log-level"):
        assert flag in opts  # serve's own
    assert "--max-messages" not in opts and "--max-body-bytes" not in opts and "--judge" not in opts


def test_serve_hands_the_judge_settings_inside_the_server_config(monkeypatch):
    import rewardscale.serve as serve_pkg

    seen = []
    judged = []
    grm = types.SimpleNamespace(backend=types.SimpleNamespace(model_id="m"))
    monkeypatch.setattr(cli_common, "build_grm", lambda backend, judge: judged.append(judge) or grm)
    monkeypatch.setattr(serve_pkg, "run", lambda grm, config, **kw: seen.append((grm, config)))
    monkeypatch.setattr(serve_pkg, "require_extra", lambda: None)
    result = CliRunner().invoke(cli.app, ["serve", "-k", "6", "--timeout", "30", "--seed", "5", "--max-batch", "2"])
    assert result.exit_code == 0, result.output
    ((served, config),) = seen
    judge = JudgeConfig(seed=5).with_model_defaults(models.judge_settings(None))  # the default judge's own settings
    assert served is grm and judged == [judge] and config.judge == judge
    assert (config.k, config.timeout_s, config.max_batch, config.auth_token) == (6, 30.0, 2, None)


def test_train_rft_takes_the_sampler_flags_but_keeps_its_own():
    opts = options("train", "rft")
    assert "--sampler-lora" in opts and opts["--lora"].is_flag  # --lora/--full trains LoRA
    assert opts["--backend"].default is None and "-b" not in opts  # picked by the model: its own flag
    for flag in ("--base-url", "--api-key", "--parallel", "--temperature", "--max-tokens", "--seed", "--force-verdict"):
        assert flag in opts
    assert "--score-mode" not in opts and "--lenient" not in opts  # no RFT labels from those


def test_help_shows_the_flags_from_the_field_help():
    result = CliRunner().invoke(cli.app, ["score", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for flag in [*BACKEND, *JUDGE]:
        assert flag in text
    assert "With --force-verdict: tokens" in text  # field names read as flags on the command line


def test_every_config_field_is_a_flag():
    # a new field is a new flag on every command at once; none may be forgotten
    opts = options("score")
    names = [f.name for cls in (BackendConfig, JudgeConfig, Sampling) for f in dataclasses.fields(cls)]
    assert {flag_name(n) for n in names if n != "sampling"} <= set(opts)


def test_values_reach_the_configs(monkeypatch):
    seen = []

    def capture(backend, judge):
        seen.append((backend, judge))
        raise typer.Exit(3)

    monkeypatch.setattr(cli_common, "build_grm", capture)
    args = ["serve", "-b", "openai", "-m", "m", "--base-url", "http://a/v1", "--base-url", "http://b/v1"]
    args += ["--api-key", "k", "--top-p", "0.9", "--max-tokens", "64", "--seed", "3", "--no-shuffle", "--lenient"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 3, result.output
    ((backend, judge),) = seen
    assert backend == BackendConfig(
        kind="openai", model="m", base_urls=("http://a/v1", "http://b/v1"), api_key="k", upstream_timeout=600.0
    )  # serve: an attempt's timeout defaults to --timeout
    assert judge == JudgeConfig(sampling=Sampling(top_p=0.9, max_tokens=64), seed=3, shuffle=False, lenient=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--top-p", "0"], "top_p must be in (0, 1]"),
        (["--backend", "vllm"], "unknown backend 'vllm'"),
        (["--max-tokens", "8"], "--max-tokens"),  # the bounds stay (click's range check)
        (["--parallel", "0"], "--parallel"),
    ],
)
def test_bad_values_exit_2_with_the_configs_message(args, message):
    result = CliRunner().invoke(cli.app, ["score", "-q", "q", "-r", "a", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_clash_with_a_commands_own_flag_is_refused_at_import_time():
    def command(seed: int = typer.Option(0, "--seed"), *, judge_cfg: JudgeConfig) -> None: ...

    with pytest.raises(TypeError, match=re.escape("declares --seed itself: exclude seed")):
        config_flags()(command)
    config_flags(exclude=("seed",))(command)  # excluded: the command's own --seed stands
    with pytest.raises(TypeError, match="takes none of backend_cfg, judge_cfg, server_cfg, train_cfg"):
        config_flags()(lambda x=1: None)


TRAIN = ("--lr", "--epochs", "--max-steps", "--batch-size", "--grad-accum", "--lora", "--lora-r", "--lora-alpha")
TRAIN += ("--dtype", "--save-steps", "--threads", "--merge", "--lora-top-layers")


@pytest.mark.parametrize("stage, defaults", [("rft", "SFT_DEFAULTS"), ("rl", "RL_DEFAULTS")])
def test_train_flags_come_from_train_options_with_the_stages_defaults(stage, defaults):
    from rewardscale.train import rl, sft

    base = getattr(sft if stage == "rft" else rl, defaults)
    opts = options("train", stage)
    for flag in TRAIN:
        assert flag in opts, f"train {stage} lacks {flag}"
    assert "--full" in opts["--lora"].secondary_opts and "--no-merge" in opts["--merge"].secondary_opts
    assert opts["--lr"].default == base.learning_rate and opts["--epochs"].default == base.epochs
    assert (opts["--batch-size"].default, opts["--grad-accum"].default) == (base.batch_size, base.grad_accum)


def test_train_values_reach_train_options_and_bad_ones_exit_2(monkeypatch, tmp_path):
    import rewardscale.train.rl as rl

    seen = []
    monkeypatch.setattr(
        rl, "train_grpo", lambda model, ex, out, opts, grpo, data_seed, judge: seen.append((opts, data_seed, judge))
    )
    data = tmp_path / "d.jsonl"
    data.write_text('{"query": "q", "responses": ["a", "b"], "best": 0}\n')
    args = ["train", "rl", "-d", str(data), "-m", "m", "-o", str(tmp_path / "o"), "--lr", "3e-6", "--lora"]
    result = CliRunner().invoke(cli.app, [*args, "--seed", "4", "--dtype", "float32", "--no-merge"])
    assert result.exit_code != 2, result.output
    ((opts, seed, judge),) = seen
    got = (opts.learning_rate, opts.lora, opts.merge_lora, opts.seed, opts.dtype, seed)
    assert got == (3e-6, True, False, 4, "float32", 4)
    assert (judge.form_facts, judge.decline_facts) == (False, False)  # plain prompts, as scoring's defaults
    seen.clear()
    result = CliRunner().invoke(cli.app, [*args, "--form-facts", "--decline-facts"])
    assert result.exit_code != 2, result.output
    assert (seen[0][2].form_facts, seen[0][2].decline_facts) == (True, True)
    assert "--code-check" not in options("train", "rl") and "--k" not in options("train", "rl")
    assert opts.batch_size == rl.RL_DEFAULTS.batch_size  # untouched flags keep the stage's defaults
    result = CliRunner().invoke(cli.app, [*args, "--dtype", "fp8"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "dtype must be one of" in " ".join(result.output.split())


def test_a_field_two_configs_share_must_be_told_apart():
    def command(*, backend_cfg: BackendConfig, train_cfg: TrainOptions) -> None: ...

    with pytest.raises(TypeError, match="field of two configs"):
        config_flags()(command)  # --threads and --lora: the sampler's or the trainer's?
    config_flags(exclude=("BackendConfig.threads",), decls={"BackendConfig.lora": ("--sampler-lora",)})(command)
    with pytest.raises(TypeError, match="takes no TrainOptions"):
        config_flags(defaults=(TrainOptions(),))(lambda *, judge_cfg: None)


def test_train_metarm_flags_come_from_metarm_options(monkeypatch, tmp_path):
    import rewardscale.metarm.data as metarm_data
    import rewardscale.metarm.train as metarm_train
    from rewardscale.metarm.options import MetaRMOptions

    opts = options("train", "metarm")
    d = MetaRMOptions()
    assert (opts["--lr"].default, opts["--epochs"].default, opts["--batch-size"].default) == (5e-5, 4.0, 16)
    assert opts["--max-length"].default == d.max_length and "--no-bf16" in opts["--bf16"].secondary_opts
    seen = []

    def stop(rows, out, opts, data_stats):
        seen.append(opts)
        raise typer.Exit(3)

    monkeypatch.setattr(metarm_data, "read_rows", lambda paths, budget_chars: ([], metarm_data.RowStats()))
    monkeypatch.setattr(metarm_train, "train_metarm", stop)
    args = ["train", "metarm", "-s", str(tmp_path / "s.jsonl"), "-o", str(tmp_path / "m"), "--lr", "1e-4"]
    result = CliRunner().invoke(cli.app, [*args, "--max-length", "64", "--no-bf16", "--val-fraction", "0.5"])
    assert result.exit_code == 3, result.output
    (got,) = seen
    assert (got.learning_rate, got.max_length, got.bf16, got.val_fraction) == (1e-4, 64, False, 0.5)
    assert got.budget_chars == 64 * 4 and got.batch_size == d.batch_size  # ~4 characters per token
    result = CliRunner().invoke(cli.app, [*args, "--val-fraction", "0.95"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "--val-fraction" in result.output


def test_train_options_take_epochs_0_only_when_max_steps_decides():
    from rewardscale.config import ConfigError
    from rewardscale.metarm.options import MetaRMOptions

    for cls in (TrainOptions, MetaRMOptions):
        assert cls(epochs=0, max_steps=5).max_steps == 5  # max_steps overrides epochs, as TRL reads them
        with pytest.raises(ConfigError, match="epochs must be > 0"):
            cls(epochs=0)
        with pytest.raises(ConfigError, match="learning_rate must be > 0"):
            cls(learning_rate=0)
