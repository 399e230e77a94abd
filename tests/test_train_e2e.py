"""End to end on CPU: a few RFT (SFT) and RL (GRPO) steps on a tiny model built from the fixture
model's config and tokenizer; the saved checkpoint is reloaded and scores a pair through the
transformers backend."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from rewardscale.backends import make_backend
from rewardscale.cli import app
from rewardscale.grm import GRM
from rewardscale.train.deps import MissingTrainExtra, require
from rewardscale.types import Sampling, Status

from .fakes import FakeBackend, verdict
from .tiny_model import build_tiny_model

runner = CliRunner()


def test_missing_training_stack_names_the_extra(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake_import(name, *args):
        if name == "trl":
            raise ImportError("No module named 'trl'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(MissingTrainExtra, match=r"rewardscale\[train\]"):
        require("torch", "trl")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def arithmetic_file(path, n=4):
    from rewardscale.train.tasks import arithmetic_pairs

    path.write_text("".join(json.dumps(r) + "\n" for r in arithmetic_pairs(n, seed=5)))
    return path


def score_with_checkpoint(out) -> None:
    """Reload `out` through the transformers backend and score one pair (k=1)."""
    grm = GRM(make_backend("transformers", model=str(out)), Sampling(max_tokens=8), max_retries=0)
    reward = grm.score("What is 2+2?", ["4", "5"], k=1)
    assert len(reward.samples) == 1 and isinstance(reward.samples[0].status, Status)
    assert reward.samples[0].text  # the random tiny model wrote something


def finite_losses(out) -> list[float]:
    result = json.loads((out / "train_result.json").read_text())
    losses = [e["loss"] for e in result["log"] if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)
    return losses


@pytest.mark.slow
def test_rft_builds_data_then_sft_via_cli_and_scores(tiny, tmp_path):
    from rewardscale.batch import write_jsonl_atomic as write_jsonl
    from rewardscale.train.data import load_examples
    from rewardscale.train.rft import build_rft

    data = arithmetic_file(tmp_path / "train.jsonl")
    examples = load_examples(data)

    def judge(shown, seed, i):  # right on the first completion of each prompt only
        right = [s for s in shown if any(s == e.request.responses[0] for e in examples)]
        return verdict([9 if (s in right) == (i == 0) else 2 for s in shown])

    records, report = build_rft(GRM(FakeBackend(judge), max_retries=0), examples, n_samples=3)
    assert report.kept_examples == 4 and records
    write_jsonl(tmp_path / "rft_data.jsonl", records)
    out = tmp_path / "rft"
    args = ["train", "rft", "--data", str(data), "--model", str(tiny), "--out", str(out)]
    args += ["--sft-data", str(tmp_path / "rft_data.jsonl"), "--max-steps", "2", "--grad-accum", "1"]
    args += ["--dtype", "float32", "--lr", "1e-3", "--lora", "--threads", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file()  # LoRA kept, and merged into OUT
    assert not (out / "adapter_config.json").exists()
    assert len(finite_losses(out)) == 2
    score_with_checkpoint(out)


@pytest.mark.slow
def test_rl_grpo_steps_via_cli_and_scores(tiny, tmp_path):
    data = arithmetic_file(tmp_path / "train.jsonl")
    out = tmp_path / "rl"
    args = ["train", "rl", "--data", str(data), "--model", str(tiny), "--out", str(out)]
    args += ["--max-steps", "1", "--batch-size", "4", "--grad-accum", "1", "--max-completion-length", "8"]
    args += ["--dtype", "float32", "--threads", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "train_result.json").read_text())
    assert meta["grpo"]["beta"] == 0.08 and meta["grpo"]["num_generations"] == 4 and meta["steps"] == 1
    rewards = [e["reward"] for e in meta["log"] if "reward" in e]
    assert rewards and all(-1.0 <= r <= 1.0 for r in rewards)
    finite_losses(out)
    score_with_checkpoint(out)


def test_rl_rejects_a_batch_that_does_not_fit_the_group(tmp_path):
    data = arithmetic_file(tmp_path / "train.jsonl")
    args = ["train", "rl", "--data", str(data), "--model", "unused", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args + ["--batch-size", "3", "--grad-accum", "1"])
    assert result.exit_code == 2 and "multiple of the group size 4" in result.output


def test_train_cli_reports_data_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "responses": ["a", "b"]}\n')
    result = runner.invoke(app, ["train", "rl", "--data", str(bad), "--model", "m", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output and "'best'" in result.output


def test_rft_cli_sample_only_writes_data_report_and_reuses_the_store(tmp_path, monkeypatch):
    import rewardscale.cli.common as cli_common

    data = arithmetic_file(tmp_path / "train.jsonl", n=3)
    answers = {json.loads(line)["chosen"] for line in data.read_text().splitlines()}
    backends = []

    def fake_build_grm(*args, **kwargs):  # right on the first completion of each prompt only
        backend = FakeBackend(lambda shown, seed, i: verdict([9 if (s in answers) == (i == 0) else 2 for s in shown]))
        backends.append(backend)
        return GRM(backend, max_retries=0)

    monkeypatch.setattr(cli_common, "build_grm", fake_build_grm)
    out = tmp_path / "rft"
    args = ["train", "rft", "--data", str(data), "--model", "m", "--out", str(out), "--sample-only"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "rft_report.json").read_text())
    assert report["examples"] == 3 and report["kept_examples"] == 3 and report["samples"] == 9
    kept = [json.loads(line) for line in (out / "rft_data.jsonl").read_text().splitlines()]
    trail = [json.loads(line) for line in (out / "rft_samples.jsonl").read_text().splitlines()]
    assert len(kept) == report["kept_samples"] and len(trail) == 9
    assert backends[0].prompts  # the first run generated
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert not backends[1].prompts  # the rerun took every sample from the store
    assert json.loads((out / "rft_report.json").read_text()) == report


@pytest.mark.slow
def test_rft_resume_continues_sft_from_its_checkpoint_and_exports_a_gguf_adapter(tiny, tmp_path):
    """A run stopped after 2 of 4 steps resumes from checkpoint-2 (steps 3-4 only, same data
    order), keeps only the adapter with --no-merge, and writes OUT/adapter.gguf."""
    from rewardscale.batch import write_jsonl_atomic as write_jsonl

    data = arithmetic_file(tmp_path / "train.jsonl", n=4)
    records = [
        {"prompt": [{"role": "user", "content": r["prompt"]}], "completion": [{"role": "assistant", "content": c}]}
        for r in map(json.loads, data.read_text().splitlines())
        for c in (verdict([9, 2]), verdict([8, 3]))
    ]
    write_jsonl(tmp_path / "rft_data.jsonl", records)
    out = tmp_path / "rft"
    base = ["train", "rft", "--data", str(data), "--model", str(tiny), "--out", str(out)]
    base += ["--sft-data", str(tmp_path / "rft_data.jsonl"), "--grad-accum", "1", "--save-steps", "1"]
    base += ["--dtype", "float32", "--lr", "1e-3", "--lora", "--lora-r", "4", "--lora-top-layers", "1"]
    base += ["--no-merge", "--threads", "2"]
    first = runner.invoke(app, [*base, "--max-steps", "2"])
    assert first.exit_code == 0, first.output
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    before = json.loads((out / "train_result.json").read_text())
    resumed = runner.invoke(app, [*base, "--max-steps", "4", "--resume", "--gguf-adapter"])
    assert resumed.exit_code == 0, resumed.output
    result = json.loads((out / "train_result.json").read_text())
    steps = [e["step"] for e in result["log"] if "loss" in e]
    # continued, not started again: this process ran steps 3-4; steps 1-2 come from the checkpoint
    assert result["steps"] == 4 and result["steps_run"] == 2 and steps == [1, 2, 3, 4]
    assert result["resumed_from"].endswith("checkpoint-2")
    assert [e["loss"] for e in result["log"] if "loss" in e][:2] == [e["loss"] for e in before["log"] if "loss" in e]
    # the longer plan's schedule from its first resumed step (linear 1e-3 -> 0 over 4 steps), not
    # the 2-step plan's last learning rate (0), which the restored optimizer would have used
    lrs = {e["step"]: e["learning_rate"] for e in result["log"] if "loss" in e}
    assert lrs[3] == pytest.approx(5e-4) and lrs[4] == pytest.approx(2.5e-4)
    assert not (out / "model.safetensors").exists()  # --no-merge: adapter only
    cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert cfg["layers_to_transform"] == [1]  # the tiny model's last layer only
    assert (out / "adapter.gguf").stat().st_size > 0
