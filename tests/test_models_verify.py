"""A cached model file is hashed once, then trusted while its size and mtime stay the same; one of
the right size with the wrong content is refused with the fix (no model needed: a small stand-in)."""

import hashlib
import os
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from rewardscale import models
from rewardscale.cli import app

GOOD = b"GGUF" + bytes(range(256)) * 16


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A stand-in embedded model whose file is already in a fresh cache."""
    monkeypatch.setenv("REWARDSCALE_CACHE", str(tmp_path / "cache"))
    base = models.MODELS[models.FIXTURE_MODEL]
    fake = replace(base, name="tiny-test-model", size=len(GOOD), sha256=hashlib.sha256(GOOD).hexdigest())
    monkeypatch.setitem(models.MODELS, fake.name, fake)
    path = tmp_path / "cache" / "models" / fake.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(GOOD)
    return fake, path


def count_hashes(monkeypatch) -> list:
    calls = []
    real = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    return calls


def test_a_good_file_is_hashed_once_then_trusted(model, monkeypatch):
    fake, path = model
    hashed = count_hashes(monkeypatch)
    assert models.model_path(fake.name) == path
    assert models.model_path(fake.name) == path
    assert len(hashed) == 1, "verified once; (size, mtime) remembered"
    os.utime(path, ns=(1, 1))  # touched: verified again
    assert models.model_path(fake.name) == path and len(hashed) == 2


def test_a_corrupt_file_of_the_right_size_is_refused_with_the_fix(model):
    fake, path = model
    path.write_bytes(b"X" * len(GOOD))
    with pytest.raises(models.ModelUnavailable, match="corrupt") as e:
        models.model_path(fake.name)
    assert str(path) in str(e.value) and f"rewardscale models prepare --name {fake.name}" in str(e.value)


def test_corruption_after_verification_is_seen_when_the_file_changes(model):
    fake, path = model
    models.model_path(fake.name)
    path.write_bytes(b"Y" * len(GOOD))  # a new mtime
    with pytest.raises(models.ModelUnavailable, match="corrupt"):
        models.model_path(fake.name)


def test_models_prepare_reports_a_corrupt_file_clearly(model):
    fake, path = model
    path.write_bytes(b"Z" * len(GOOD))
    result = CliRunner().invoke(app, ["models", "prepare", "--name", fake.name])
    assert result.exit_code == 2 and "corrupt" in result.output and "Traceback" not in result.output
