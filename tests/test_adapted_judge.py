"""Embedded adapted judges (a base GGUF + a GGUF LoRA shipped in the package): resolution,
hash check, and what each backend does with one."""

import hashlib

import pytest

from rewardscale import models
from rewardscale.backends import BackendError, make_backend


@pytest.fixture
def adapted(tmp_path, monkeypatch):
    """A registered adapted judge whose adapter file lives in a temporary package folder."""
    blob = b"GGUF-lora-bytes"
    (tmp_path / "a.gguf").write_bytes(blob)
    adapter = models.EmbeddedAdapter(
        name="test-judge",
        description="test",
        base=models.FIXTURE_MODEL,
        filename="a.gguf",
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        card="card.md",
        scale=0.5,
    )
    monkeypatch.setattr(models, "ADAPTERS", {"test-judge": adapter})
    monkeypatch.setattr(models, "adapters_dir", lambda: tmp_path)
    return adapter, tmp_path


def test_adapted_judge_resolves_to_its_base_and_verified_adapter(adapted, monkeypatch):
    adapter, folder = adapted
    monkeypatch.setattr(models, "model_path", lambda name, progress=None: folder / f"{name}.gguf")
    assert models.is_embedded("test-judge") and models.base_of("test-judge") == models.FIXTURE_MODEL
    assert models.get_model("test-judge").name == models.FIXTURE_MODEL
    base, lora = models.llama_files("test-judge")
    assert base == folder / f"{models.FIXTURE_MODEL}.gguf" and lora == [(folder / "a.gguf", 0.5)]
    assert models.llama_files(models.FIXTURE_MODEL)[1] == []
    # samples are stored under the name and the adapter's checksum: a new adapter, new keys
    assert models.store_id("test-judge") == f"test-judge@{adapter.sha256[:12]}"
    assert models.store_id(models.FIXTURE_MODEL) == models.FIXTURE_MODEL


def test_a_corrupt_adapter_is_refused_with_the_fix(adapted):
    _, folder = adapted
    (folder / "a.gguf").write_bytes(b"GGUF-lora-bytez")
    with pytest.raises(models.ModelUnavailable, match="reinstall rewardscale"):
        models.adapter_path("test-judge")
    (folder / "a.gguf").unlink()
    with pytest.raises(models.ModelUnavailable, match="missing from the package"):
        models.adapter_path("test-judge")


def test_transformers_backend_points_to_llamacpp_for_an_adapted_judge(adapted):
    with pytest.raises(BackendError, match="--backend llamacpp"):
        make_backend("transformers", model="test-judge")


def test_unknown_model_names_the_adapted_judges_too(adapted):
    with pytest.raises(models.ModelUnavailable, match="test-judge"):
        models.get_model("nope")
