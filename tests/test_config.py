"""The judge's settings live in one JudgeConfig, validated once; GRM(backend, config) and the old
keyword arguments build the same judge."""

from __future__ import annotations

import dataclasses
import re

import pytest
from typer.testing import CliRunner

from rewardscale import GRM, RewardscaleError, Sampling, cli, config, models
from rewardscale.backends import BackendError
from rewardscale.backends.base import Capabilities, Completion
from rewardscale.backends.openai_http import OpenAIBackend
from rewardscale.cli import common as cli_common
from rewardscale.config import BackendConfig, ConfigError, JudgeConfig, build_backend

from .fakes import FakeBackend


class GrammarFake(FakeBackend):
    """A fake judge that decodes under a grammar (constrained format)."""

    capabilities = Capabilities(constrained_generation=True)


class GrammarVerdictFake(GrammarFake):
    """... and that can decode a constrained verdict (forced verdicts, expected scores)."""

    capabilities = Capabilities(constrained_generation=True, verdicts=True, verdict_constraint="grammar")

    def verdicts(self, requests, sampling):
        return [Completion("5}" if r.verdict == 1 else ", ".join(["5"] * r.verdict) + "}", "stop") for r in requests]


def test_defaults_reproduce_the_paper():
    c = JudgeConfig()
    assert c.sampling == Sampling(temperature=0.5, top_p=1.0, max_tokens=1024)
    assert (c.seed, c.shuffle, c.max_retries, c.lenient) == (0, True, 2, False)
    assert (c.force_verdict, c.critique_budget, c.constrain_format, c.score_mode) == (False, None, False, "integer")
    assert all(f.metadata.get("help") for f in dataclasses.fields(JudgeConfig))  # every field says what it does
    d = c.to_dict()  # JSON-ready, e.g. for a report's settings
    assert d["sampling"] == {"temperature": 0.5, "top_p": 1.0, "max_tokens": 1024} and d["score_mode"] == "integer"
    assert JudgeConfig(**{**d, "sampling": Sampling(**d["sampling"])}) == c


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"score_mode": "median"}, "score_mode must be one of integer, expected"),
        ({"critique_budget": 0}, "critique_budget must be >= 1"),
        ({"max_retries": -1}, "max_retries must be >= 0"),
        ({"sampling": Sampling(max_tokens=0)}, "max_tokens must be >= 1"),
        ({"sampling": Sampling(temperature=-0.1)}, "temperature must be >= 0"),
        ({"sampling": Sampling(top_p=0.0)}, "top_p must be in"),
        ({"sampling": {"temperature": 0.5}}, "sampling must be a Sampling"),
    ],
)
def test_bad_values_fail_when_the_config_is_built(settings, message):
    with pytest.raises(ConfigError, match=message) as e:
        JudgeConfig(**settings)
    assert isinstance(e.value, ValueError) and isinstance(e.value, RewardscaleError)


def test_the_config_is_frozen_and_replace_validates_again():
    c = JudgeConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 1  # type: ignore[misc]
    assert c.with_overrides(seed=3).seed == 3 and c.seed == 0
    with pytest.raises(ConfigError):
        c.with_overrides(critique_budget=-5)
    with pytest.raises(TypeError, match="unknown judge setting"):
        c.with_overrides(temprature=0.3)


def test_critique_budget_caps_only_the_forced_generation():
    c = JudgeConfig(sampling=Sampling(max_tokens=512), critique_budget=64)
    assert c.generation_sampling.max_tokens == 512
    assert dataclasses.replace(c, force_verdict=True).generation_sampling.max_tokens == 64
    assert JudgeConfig(force_verdict=True, critique_budget=4096).generation_sampling.max_tokens == 1024


def test_grm_with_a_config_equals_grm_with_keywords():
    settings = dict(
        sampling=Sampling(temperature=0.7, max_tokens=200), seed=5, shuffle=False, max_retries=1, lenient=True
    )
    by_config = GRM(FakeBackend(), JudgeConfig(**settings))
    by_keywords = GRM(FakeBackend(), **settings)
    assert by_config.config == by_keywords.config == JudgeConfig(**settings)
    a = by_config.score("q", ["a", "bbb"], k=4)
    b = by_keywords.score("q", ["a", "bbb"], k=4)
    assert a.to_dict() == b.to_dict()
    assert [r.seed for r in by_config.backend.prompts] == [r.seed for r in by_keywords.backend.prompts]


def test_keywords_override_the_config_and_the_attributes_read_it():
    base = JudgeConfig(seed=1, max_retries=0)
    grm = GRM(GrammarFake(), base, seed=9, constrain_format=True)
    assert grm.config == dataclasses.replace(base, seed=9, constrain_format=True)
    assert (grm.seed, grm.max_retries, grm.constrain_format) == (9, 0, True)
    assert grm.sampling is grm.config.sampling and grm.score_mode == "integer" and grm.shuffle is True
    assert base.seed == 1  # the caller's config is left as it was
    with pytest.raises(AttributeError):
        grm.seed = 2  # one source of truth: change the config, not a copy of one field


def test_a_sampling_in_the_config_place_is_the_old_positional_sampling():
    grm = GRM(FakeBackend(), Sampling(max_tokens=8), max_retries=0)
    assert grm.config == JudgeConfig(sampling=Sampling(max_tokens=8), max_retries=0)
    with pytest.raises(TypeError, match="sampling twice"):
        GRM(FakeBackend(), Sampling(), sampling=Sampling())
    assert GRM(FakeBackend(), JudgeConfig(seed=2), sampling=None).config == JudgeConfig(seed=2)  # old default


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="force_verdit"):
        GRM(FakeBackend(), force_verdit=True)


def test_the_backend_check_happens_in_one_place_for_every_grm():
    with pytest.raises(ConfigError, match="constrain_format needs a backend"):
        GRM(FakeBackend(), JudgeConfig(constrain_format=True))
    with pytest.raises(ConfigError, match="score_mode 'expected' needs"):
        GRM(FakeBackend(), score_mode="expected")
    JudgeConfig(constrain_format=True).check(GrammarFake())  # a backend that can: no error


def test_the_default_judge_passes_its_settings_through(monkeypatch):
    import rewardscale.backends as backends

    built = []
    monkeypatch.setattr(backends, "make_backend", lambda kind, **kw: built.append((kind, kw)) or FakeBackend())
    grm = GRM.default(parallel=2, config=JudgeConfig(seed=4), max_retries=0)
    assert built == [("llamacpp", {"model": None, "parallel": 2, "threads": None})]
    assert grm.config == JudgeConfig(seed=4, max_retries=0)
    assert grm.score("q", ["a", "bb"], k=2).rewards == [2.0, 4.0]


# --- BackendConfig -> backend; the CLI's one road from flags to a judge ---


def test_backend_config_validates_and_hides_its_key():
    c = BackendConfig(kind="openai", model="m", base_urls="http://a/v1", api_key="sk-secret")
    assert c.base_urls == ("http://a/v1",) and "sk-secret" not in repr(c)
    assert BackendConfig(kind="openai", base_urls=["http://a/v1", "http://b/v1"]).base_urls == (
        "http://a/v1",
        "http://b/v1",
    )
    for bad, message in [
        ({"kind": "vllm-offline"}, "unknown backend 'vllm-offline'; choose one of: llamacpp, openai, transformers"),
        ({"verdict_constraint": "outlines"}, "unknown verdict constraint 'outlines'"),
        ({"parallel": 0}, "parallel must be >= 1"),
        ({"threads": 0}, "threads must be >= 1"),
        ({"upstream_timeout": 0}, "upstream_timeout must be > 0"),
        ({"upstream_retries": -1}, "upstream_retries must be >= 0"),
        ({"concurrency": 0}, "concurrency must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            BackendConfig(**bad)
    assert all(f.metadata.get("help") for f in dataclasses.fields(BackendConfig))


def test_backend_config_gives_make_backend_its_options():
    assert BackendConfig().model_id == models.store_id(models.DEFAULT_MODEL)
    assert BackendConfig(parallel=2, threads=1, ctx_per_slot=2048).options() == {
        "model": models.DEFAULT_MODEL,
        "parallel": 2,
        "ctx_per_slot": 2048,
        "threads": 1,
    }
    with pytest.raises(ConfigError, match="ctx_per_slot must be >= 256"):
        BackendConfig(ctx_per_slot=100)
    assert BackendConfig(kind="transformers", model="./ckpt", parallel=2).options() == {"model": "./ckpt"}
    assert BackendConfig(kind="transformers", model="./ckpt").model_id == "./ckpt"


def test_build_backend_builds_the_openai_backend_it_describes():
    cfg = BackendConfig(
        kind="openai",
        model="grm-27b",
        base_urls=("http://gpu1:8000/v1/", "http://gpu2:8000/v1"),
        api_key="k",
        verdict_constraint="vllm",
        upstream_timeout=30.0,
        upstream_retries=1,
        concurrency=48,
    )
    b = build_backend(cfg)
    assert isinstance(b, OpenAIBackend)
    assert b.base_urls == ["http://gpu1:8000/v1", "http://gpu2:8000/v1"] and b.model_id == cfg.model_id == "grm-27b"
    assert (b.api_key, b.verdict_constraint, b.timeout, b.max_retries) == ("k", "vllm", 30.0, 1)
    assert b.concurrency == 48 and BackendConfig(kind="openai").options()["concurrency"] == 16
    assert build_backend(dataclasses.replace(cfg, upstream_timeout=None)).timeout == 600.0
    with pytest.raises(BackendError, match="--base-url"):
        build_backend(BackendConfig(kind="openai", model="m"))
    with pytest.raises(BackendError, match="--model"):
        build_backend(BackendConfig(kind="transformers"))


def test_build_grm_takes_a_backend_config_and_a_judge_config():
    backend = BackendConfig(
        kind="openai", model="m", base_urls=("http://127.0.0.1:9/v1",), verdict_constraint="grammar"
    )
    judge = JudgeConfig(seed=3, constrain_format=True, score_mode="expected")
    grm = cli_common.build_grm(backend, judge)
    assert grm.config is judge and isinstance(grm.backend, OpenAIBackend)
    assert grm.backend.verdict_constraint == "grammar"
    grm.close()


def test_bench_stored_only_builds_its_judge_from_the_same_config(monkeypatch, tmp_path):
    import rewardscale.bench as bench

    seen = []

    def fake_run_bench(grm, *args, **kwargs):
        engine = grm.backend.backend  # the engine behind the store (None: stored only)
        seen.append((type(engine).__name__, grm.backend.model_id, grm.config))
        raise ValueError("stop here")

    monkeypatch.setattr(config, "make_backend", lambda name, **options: GrammarVerdictFake())
    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    args = ["bench", "rewardbench", "-d", "x.jsonl", "--out", str(tmp_path), "-m", "fake", "--seed", "4"]
    args += ["--max-tokens", "300", "--force-verdict", "--critique-budget", "50", "--score-mode", "expected"]
    args += ["--constrain-format", "--lenient", "--max-retries", "1", "--temperature", "0.7"]
    for extra in ([], ["--stored-only"]):
        assert CliRunner().invoke(cli.app, [*args, *extra]).exit_code == 2
    (run_backend, run_id, run_cfg), (stored_backend, stored_id, stored_cfg) = seen
    assert (run_backend, stored_backend) == ("GrammarVerdictFake", "NoneType") and run_id == stored_id == "fake"
    assert (
        stored_cfg
        == run_cfg
        == JudgeConfig(
            sampling=Sampling(temperature=0.7, max_tokens=300),
            seed=4,
            max_retries=1,
            lenient=True,
            force_verdict=True,
            critique_budget=50,
            score_mode="expected",
            constrain_format=True,
        )
    )


# --- an option the backend cannot honour is refused, the same way for each of them ---


@pytest.mark.parametrize(
    "flag, option",
    [
        ("--force-verdict", "force_verdict"),
        ("--score-mode=expected", "score_mode 'expected'"),
        ("--constrain-format", "constrain_format"),
    ],
)
def test_an_unconstrained_server_refuses_each_verdict_option_with_a_clear_error(flag, option):
    unconstrained = OpenAIBackend("http://127.0.0.1:9/v1", "m")  # verdict_constraint none: nothing constrains
    with pytest.raises(ConfigError, match=re.escape(option) + " needs a backend"):
        JudgeConfig(**_setting(flag)).check(unconstrained)
    JudgeConfig(**_setting(flag)).check(OpenAIBackend("http://127.0.0.1:9/v1", "m", verdict_constraint="vllm"))
    args = ["score", "-q", "q", "-r", "a", "-r", "b", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]
    result = CliRunner().invoke(cli.app, [*args, "--model", "m", flag])
    assert result.exit_code == 2, result.output
    assert f"{option} needs a backend" in result.output and "verdict_constraint none" in result.output


def _setting(flag: str) -> dict:
    return {
        "--force-verdict": {"force_verdict": True},
        "--score-mode=expected": {"score_mode": "expected"},
        "--constrain-format": {"constrain_format": True},
    }[flag]
