"""`score`, `bench`, `serve` and `train rft` take the same verdict options and hand them to the
judge unchanged, as one BackendConfig and one JudgeConfig."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

import rewardscale.cli as cli
import rewardscale.cli.common as cli_common
from rewardscale.config import BackendConfig, JudgeConfig


@pytest.fixture
def seen(monkeypatch) -> list[tuple[BackendConfig, JudgeConfig]]:
    """The configs every `build_grm` call receives; the command stops there (exit 3)."""
    calls: list[tuple[BackendConfig, JudgeConfig]] = []

    def capture(backend: BackendConfig, judge: JudgeConfig):
        calls.append((backend, judge))
        raise typer.Exit(3)

    monkeypatch.setattr(cli_common, "build_grm", capture)
    return calls


FLAGS = [
    "--force-verdict",
    "--critique-budget",
    "64",
    "--verdict-constraint",
    "vllm",
    "--constrain-format",
]


@pytest.mark.parametrize(
    "command, extra, want",
    [
        (["score", "--query", "q", "--response", "a"], ["--score-mode", "expected"], "expected"),
        (["bench", "rewardbench", "--data", "x.jsonl"], [], "integer"),
        (["serve"], ["--score-mode", "expected"], "expected"),
    ],
)
def test_verdict_options_reach_the_judge(seen, command, extra, want):
    result = CliRunner().invoke(cli.app, [*command, "--backend", "openai", *FLAGS, *extra])
    assert result.exit_code == 3, result.output
    ((backend, judge),) = seen
    assert backend.kind == "openai" and backend.verdict_constraint == "vllm"
    assert judge == JudgeConfig(force_verdict=True, critique_budget=64, score_mode=want, constrain_format=True)


def test_train_rft_can_force_verdicts(seen, tmp_path):
    # a small judge that rarely writes its verdict line still yields trajectories to keep
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "1+1?", "chosen": "2", "rejected": "3"}\n')
    args = ["train", "rft", "--data", str(data), "--model", "m.gguf", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli.app, [*args, "--force-verdict", "--critique-budget", "200"])
    assert result.exit_code == 3, result.output
    ((backend, judge),) = seen
    assert backend == BackendConfig(kind="llamacpp", model="m.gguf")
    assert judge == JudgeConfig(force_verdict=True, critique_budget=200)
