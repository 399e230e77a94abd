"""Forced verdicts and expected scores through the OpenAI-compatible backend (a mock upstream on loopback)."""

import json
import math
import re

import httpx
import pytest

from rewardscale import GRM, Status
from rewardscale.backends.base import BackendError
from rewardscale.backends.openai_http import OpenAIBackend
from rewardscale.verdict import VERDICT_PREFIX, can_force


def _lp(token, alts):
    return {
        "token": token,
        "logprob": alts[token],
        "top_logprobs": [{"token": t, "logprob": v} for t, v in alts.items()],
    }


class JudgeServer:
    """A mock chat server: first generations ramble until the token limit; a request whose last
    message is the assistant's prefix gets a verdict `7, 3}` that obeys the request's constraint,
    echoed after the prefix when `echo` (llama.cpp server does), with logprobs when asked."""

    def __init__(self, echo: bool = False):
        self.echo = echo
        self.bodies = []

    def __call__(self, request):
        body = json.loads(request.content)
        self.bodies.append(body)
        last = body["messages"][-1]
        if last["role"] != "assistant":
            choice = {"index": 0, "message": {"content": "Analysis: response 1 is"}, "finish_reason": "length"}
            return httpx.Response(200, json={"choices": [choice] * body["n"]})
        pattern = body.get("guided_regex") or body.get("regex")
        text = "7, 3}"
        assert pattern or "grammar" in body, "a verdict request without a constraint"
        if pattern:
            assert re.fullmatch(pattern, text)
        choice = {"index": 0, "message": {"content": (last["content"] if self.echo else "") + text}}
        choice["finish_reason"] = "stop"
        if body.get("logprobs"):
            choice["logprobs"] = {
                "content": [
                    _lp("7", {"7": -0.5, "8": -1.0}),
                    _lp(",", {",": 0.0}),
                    _lp(" ", {" ": 0.0}),
                    _lp("3", {"3": -0.1}),
                    _lp("}", {"}": 0.0}),
                ]
            }
        return httpx.Response(200, json={"choices": [choice]})


def backend(mock_upstream, server, constraint):
    return OpenAIBackend(mock_upstream(server) + "/v1", "m", verdict_constraint=constraint)


@pytest.mark.parametrize("constraint", ["vllm", "sglang"])
def test_vllm_and_sglang_continue_the_final_message_under_a_regex(constraint, mock_upstream):
    server = JudgeServer()
    r = GRM(backend(mock_upstream, server, constraint), force_verdict=True, shuffle=False).score("q", ["a", "b"], k=1)
    (j,) = r.samples
    assert j.status is Status.FORCED and j.scores == (7, 3)
    assert j.text == "Analysis: response 1 is\n" + VERDICT_PREFIX + "7, 3}"
    body = server.bodies[-1]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "Analysis: response 1 is\n" + VERDICT_PREFIX}
    if constraint == "vllm":
        assert body["structured_outputs"] == {"regex": body["guided_regex"]}
    assert len(server.bodies) == 2  # one generation, one verdict, no retry


def test_llamacpp_server_gets_a_grammar_and_its_echoed_prefix_is_stripped(mock_upstream):
    server = JudgeServer(echo=True)
    r = GRM(backend(mock_upstream, server, "grammar"), force_verdict=True, shuffle=False).score("q", ["a", "b"], k=1)
    (j,) = r.samples
    assert j.status is Status.FORCED and j.scores == (7, 3)
    assert j.text.count(VERDICT_PREFIX) == 1
    body = server.bodies[-1]
    assert "root ::=" in body["grammar"] and "continue_final_message" not in body


def test_no_constraint_means_no_forcing_and_bounded_retries(mock_upstream):
    server = JudgeServer()
    b = backend(mock_upstream, server, "none")
    assert not can_force(b)
    # --backend openai --force-verdict with the default constraint used to do nothing, silently
    with pytest.raises(ValueError, match=r"force_verdict needs .*OpenAIBackend \(verdict_constraint none\)"):
        GRM(b, force_verdict=True)
    r = GRM(b, max_retries=1).score("q", ["a", "b"], k=1)
    assert r.samples[0].status is Status.TRUNCATED and len(server.bodies) == 2  # two generations
    assert all(m["role"] != "assistant" for body in server.bodies for m in body["messages"])
    with pytest.raises(BackendError, match="verdict constraint"):
        OpenAIBackend("http://x/v1", "m", verdict_constraint="outlines")


def test_expected_mode_asks_for_logprobs(mock_upstream):
    server = JudgeServer()
    r = GRM(backend(mock_upstream, server, "vllm"), force_verdict=True, score_mode="expected", shuffle=False).score(
        "q", ["a", "b"], k=1
    )
    (j,) = r.samples
    body = server.bodies[-1]
    assert body["logprobs"] is True and body["top_logprobs"] >= 10
    p7, p8 = math.exp(-0.5), math.exp(-1.0)
    assert j.expected == pytest.approx(((7 * p7 + 8 * p8) / (p7 + p8), 3.0))
    assert r.rewards == pytest.approx(list(j.expected))


def test_cli_expected_mode_needs_a_constraining_server():
    from typer.testing import CliRunner

    from rewardscale.cli import app

    args = ["score", "-q", "q", "-r", "a", "-r", "b", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]
    result = CliRunner().invoke(app, [*args, "--model", "m", "--score-mode", "expected"])
    assert result.exit_code != 0 and "expected" in result.output
    result = CliRunner().invoke(app, [*args, "--model", "m", "--verdict-constraint", "outlines"])
    assert result.exit_code != 0 and "verdict constraint" in result.output
