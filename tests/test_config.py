"""The judge's settings live in one JudgeConfig, validated once; GRM(backend, config) and the old
keyword arguments build the same judge."""

from __future__ import annotations

import dataclasses

import pytest

from rewardscale import GRM, RewardscaleError, Sampling
from rewardscale.config import ConfigError, JudgeConfig

from .fakes import FakeBackend


class GrammarFake(FakeBackend):
    """A fake judge that decodes under a grammar (constrained format)."""

    grammar_generation = True


def test_defaults_reproduce_the_paper():
    c = JudgeConfig()
    assert c.sampling == Sampling(temperature=0.5, top_p=1.0, max_tokens=1024)
    assert (c.seed, c.shuffle, c.max_retries, c.lenient) == (0, True, 2, False)
    assert (c.force_verdict, c.critique_budget, c.constrain_format, c.score_mode) == (False, None, False, "integer")
    assert all(f.metadata.get("help") for f in dataclasses.fields(JudgeConfig))  # every field says what it does


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
