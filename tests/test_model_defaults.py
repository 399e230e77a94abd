"""An embedded judge ships with the judge settings it was trained and measured with (its
`generation_config`): applied wherever the user sets none, overridden by any flag or argument."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

import rewardscale.backends as backends
import rewardscale.cli as cli
import rewardscale.cli.common as cli_common
from rewardscale import GRM, models
from rewardscale.backends.base import Capabilities
from rewardscale.config import BackendConfig, JudgeConfig
from rewardscale.types import Sampling

from .fakes import FakeBackend

SETTINGS = (("principles", "blind"), ("force_verdict", True), ("critique_budget", 96), ("max_tokens", 160))


@pytest.fixture
def judge_with_settings(monkeypatch):
    """The shipped adapter, declaring SETTINGS (whatever it ships with today)."""
    name = "rewardscale-judge-1.5b"
    monkeypatch.setitem(models.ADAPTERS, name, dataclasses.replace(models.ADAPTERS[name], judge=SETTINGS))
    return name


def test_settings_fill_what_the_user_left_unset():
    base = JudgeConfig(seed=3)
    cfg = base.with_model_defaults(dict(SETTINGS))
    assert (cfg.principles, cfg.force_verdict, cfg.critique_budget, cfg.sampling.max_tokens, cfg.seed) == (
        "blind",
        True,
        96,
        160,
        3,
    )
    kept = base.with_model_defaults(dict(SETTINGS), explicit={"principles", "max_tokens"})
    assert (kept.principles, kept.sampling.max_tokens, kept.force_verdict) == ("joint", 1024, True)
    # one that cannot go with what the user set is left out
    constrained = JudgeConfig(constrain_format=True).with_model_defaults(dict(SETTINGS), explicit={"constrain_format"})
    assert (constrained.principles, constrained.force_verdict) == ("joint", True)
    assert constrained.setting("max_tokens") == 160 and constrained.setting("principles") == "joint"
    with pytest.raises(TypeError, match="unknown judge setting"):
        base.with_model_defaults({"principle": "blind"})


def test_only_an_embedded_adapted_judge_has_settings(judge_with_settings):
    assert models.judge_settings(judge_with_settings) == dict(SETTINGS)
    assert models.judge_settings(models.BASE_MODEL) == {}
    assert models.judge_settings("/some/model.gguf") == {}
    assert BackendConfig(model=judge_with_settings).judge_defaults == dict(SETTINGS)
    assert BackendConfig(kind="openai", model=judge_with_settings).judge_defaults == {}


def _judge_of(monkeypatch, args):
    seen = []

    def capture(backend, judge):
        seen.append(judge)
        raise typer.Exit(3)

    monkeypatch.setattr(cli_common, "build_grm", capture)
    result = CliRunner().invoke(cli.app, ["score", "-q", "q", "-r", "a", "-r", "b", *args])
    assert result.exit_code == 3, result.output
    return seen[0], result.output


def test_the_cli_applies_them_says_so_and_lets_a_flag_win(monkeypatch, judge_with_settings):
    judge, out = _judge_of(monkeypatch, ["-m", judge_with_settings])
    assert judge == JudgeConfig(
        sampling=Sampling(max_tokens=160), principles="blind", force_verdict=True, critique_budget=96
    )
    assert "its judge settings --principles blind --force-verdict --critique-budget 96 --max-tokens 160" in " ".join(
        out.split()
    )
    judge, _ = _judge_of(monkeypatch, ["-m", judge_with_settings, "--principles", "joint", "--max-tokens", "512"])
    assert (judge.principles, judge.sampling.max_tokens, judge.force_verdict) == ("joint", 512, True)
    judge, out = _judge_of(monkeypatch, ["-m", models.BASE_MODEL])
    assert judge == JudgeConfig() and "judge settings" not in out


def test_grm_default_applies_them_under_the_callers_arguments(monkeypatch, judge_with_settings):
    fake = FakeBackend()
    fake.capabilities = Capabilities(verdicts=True, verdict_constraint="grammar", continuation=True)
    monkeypatch.setattr(backends, "make_backend", lambda *a, **kw: fake)
    grm = GRM.default(judge_with_settings, seed=5, principles="shared")
    assert (grm.principles, grm.force_verdict, grm.critique_budget, grm.seed) == ("shared", True, 96, 5)
    assert grm.sampling.max_tokens == 160
    assert GRM.default(judge_with_settings, config=JudgeConfig()).config == JudgeConfig()  # a config as given


def test_the_default_judge_computes_answers_with_code_and_one_flag_turns_it_off(monkeypatch):
    """The shipped judge runs with code checks (README *Code-checked answers*); `--code-check 0`
    is the way out for conversations whose author is not trusted."""
    assert models.judge_settings(None)["code_check"] == 4
    judge, out = _judge_of(monkeypatch, [])
    assert judge.code_check == 4 and "--code-check 4" in " ".join(out.split())
    assert judge.compare_answers and judge.form_facts  # the rules' facts (README *Rule facts*)
    judge, out = _judge_of(monkeypatch, ["--code-check", "0"])
    assert judge.code_check == 0 and judge.principles == "blind"
    assert not judge.compare_answers and "--compare-answers" not in out  # nothing to compare with
    assert judge.form_facts


def test_a_flag_that_needs_a_model_setting_is_valid_with_the_model(monkeypatch):
    """`--compare-answers` needs code checks and `--verdict-in-slot` a critique budget: the
    default judge supplies both, so either flag alone works on it; where nothing supplies the
    setting (a raw model, or the user turned it off) the config's own error is given."""
    judge, _ = _judge_of(monkeypatch, ["--compare-answers"])
    assert judge.compare_answers and judge.code_check == 4
    judge, _ = _judge_of(monkeypatch, ["--verdict-in-slot"])
    assert judge.verdict_in_slot and judge.critique_budget == 96 and judge.force_verdict
    for args in (["--compare-answers", "--code-check", "0"], ["--compare-answers", "-m", models.BASE_MODEL]):
        result = CliRunner().invoke(cli.app, ["score", "-q", "q", "-r", "a", "-r", "b", *args])
        assert result.exit_code == 2 and "needs code_check >= 1" in result.output
