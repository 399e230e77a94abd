"""End to end on the real embedded judge (llama.cpp, CPU) and the CLI."""

import json

import pytest
from typer.testing import CliRunner

from rewardscale import GRM, Status
from rewardscale.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_embedded_default_model_scores_a_pair():
    """The default judge (the trained 1.5B with the settings it ships with: blind principles,
    forced verdicts), k=2: every sample has a verdict, and its scores, mapped back through its
    permutation, sum to the reported rewards."""
    grm = GRM.default(parallel=2)
    assert grm.principles == "blind" and grm.forcing
    with grm:
        r = grm.score("What is 17*23?", ["17*23 = 391.", "17*23 = 401."], k=2)
    assert len(r.samples) == 2
    assert {j.spec.permutation for j in r.samples} == {(0, 1), (1, 0)}
    valid = [j for j in r.samples if j.valid]
    assert len(valid) == 2, [j.text for j in r.samples]
    for j in valid:
        assert j.status in (Status.OK, Status.FORCED) and len(j.scores) == 2 and all(1 <= s <= 10 for s in j.scores)
        assert j.text.startswith("Specific Criteria: ")
        assert [j.scores[orig] for orig in j.spec.permutation] == list(j.shown_scores)
        assert j.principles and j.critique
    assert r.rewards == [float(sum(j.scores[i] for j in valid)) for i in range(2)]
    assert r.best in (0, 1)


@pytest.mark.slow
def test_cli_score_json_on_fixture_model():
    result = runner.invoke(
        app,
        [
            "score",
            "--query",
            "2+2?",
            "-r",
            "4",
            "-r",
            "5",
            "-k",
            "2",
            "--model",
            "qwen2.5-coder-0.5b-instruct-q4_k_m",
            "--max-tokens",
            "64",
            "--max-retries",
            "0",
            "--json",
            "--show-samples",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["k"] == 2 and len(data["rewards"]) == 2 and len(data["samples"]) == 2
    assert {tuple(s["permutation"]) for s in data["samples"]} == {(0, 1), (1, 0)}


@pytest.mark.parametrize(
    "args,message",
    [
        (["score", "--query", "q", "-k", "2"], "at least one response"),
        (["score", "-r", "a"], "exactly one of --query or --messages"),
        (["score", "--query", "q", "-r", "a", "--backend", "nope"], "unknown backend"),
        (["score", "--query", "q", "-r", "a", "--backend", "openai", "--model", "m"], "base-url"),
        (["score", "--messages", '[{"role": "robot", "content": "x"}]', "-r", "a"], "role"),
        (["score", "--messages", "{not json", "-r", "a"], "not valid JSON"),
        (["score", "--query", "q", "-r", "a", "--backend", "transformers"], "--model"),
    ],
)
def test_cli_bad_input_is_a_clear_error(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_unreachable_server():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(
        app,
        [
            "score",
            "--query",
            "q",
            "-r",
            "a",
            "--backend",
            "openai",
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--model",
            "m",
            "-k",
            "1",
        ],
    )
    assert result.exit_code == 2 and "cannot connect" in result.output


def test_cli_models_lists_embedded_models():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "Apache-2.0" in result.output
