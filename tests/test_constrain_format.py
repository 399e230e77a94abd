"""Constrained full output: the whole generation under a GBNF grammar for the three-part format."""

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rewardscale import GRM, Sampling, Status
from rewardscale.backends.base import BackendError, Capabilities, GenerationRequest
from rewardscale.backends.llamacpp import LlamaCppBackend
from rewardscale.backends.openai_http import OpenAIBackend
from rewardscale.store import SampleStore, prompt_hash, sample_key
from rewardscale.template import parse
from rewardscale.verdict import (
    SCORE_RULE,
    can_constrain_format,
    format_grammar,
    verdict_grammar,
    verdict_regex,
)

from .fakes import FakeBackend, verdict

DATA = Path(__file__).parent / "data"

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[A-Za-z_][\w-]*|[()|*+?]|\s+')


def gbnf_regex(grammar: str) -> re.Pattern:
    """A (non-recursive) GBNF grammar as a Python regex over the same strings: enough to check
    the language our grammars define without a model."""
    rules = {}
    for line in grammar.strip().splitlines():
        name, body = line.split(" ::= ", 1)
        rules[name] = body

    def expand(body: str) -> str:
        out = []
        for tok in _TOKEN.findall(body):
            if tok.isspace():
                continue
            if tok.startswith('"'):
                out.append(re.escape(json.loads(tok)))  # GBNF escapes \\ \" \n read as JSON's
            elif tok.startswith("[") or tok in "()|*+?":
                out.append(tok)
            else:
                out.append(f"(?:{expand(rules[tok])})")
        return "".join(out)

    return re.compile(expand(rules["root"]))


def full(n: int, scores: str, criteria: str = "correctness (60%), clarity (40%).", analysis: str = "both fine.") -> str:
    return f"Specific Criteria: {criteria}\nAnalysis: {analysis}\nScores: \\boxed{{{scores}}}"


@pytest.mark.parametrize(
    "n, good, bad",
    [
        (1, ["5", "10", "1"], ["0", "11", "5, 5", ""]),
        (2, ["7, 3", "7,3", "10, 1"], ["7", "7, 3, 1", "7,  3", "7 ,3", "0, 3", "7; 3"]),
        (3, ["1, 2, 10", "4,5, 6"], ["1, 2", "1, 2, 3, 4", "1, 2, 11"]),
    ],
)
def test_format_grammar_admits_exactly_three_part_outputs_that_parse_strictly(n, good, bad):
    g = format_grammar(n)
    lines = g.splitlines()
    assert lines[0] == r'root ::= "Specific Criteria: " text "\nAnalysis: " text "\nScores: \\boxed{" verdict'
    assert lines[1] == "verdict ::= " + (" sep ".join(["score"] * n)) + ' "}"'
    assert ('sep ::= "," " "?' in lines) == (n > 1)
    assert g.endswith(SCORE_RULE) and g.count("score ::=") == 1  # the verdict grammar's score rule
    assert SCORE_RULE in verdict_grammar(n)
    lang = gbnf_regex(g)
    for scores in good:
        text = full(n, scores)
        assert lang.fullmatch(text), text
        parsed = parse(text, n, "stop")
        assert parsed.status is Status.OK and len(parsed.scores) == n
    for scores in bad:
        assert not lang.fullmatch(full(n, scores)), scores
    multi = full(n, good[0], criteria="a (50%)\n\n- b (50%)", analysis="Response 1: ok.\nResponse 2: weak.")
    assert lang.fullmatch(multi) and parse(multi, n).status is Status.OK
    # no part can be empty or left out, and nothing may follow the verdict
    assert not lang.fullmatch(full(n, good[0], criteria=""))
    assert not lang.fullmatch(full(n, good[0], analysis=""))
    assert not lang.fullmatch(full(n, good[0]) + "\n")
    assert not lang.fullmatch(f"Analysis: x\nScores: \\boxed{{{good[0]}}}")
    assert not lang.fullmatch("Specific Criteria: x\n" + f"Scores: \\boxed{{{good[0]}}}")


def test_verdict_grammar_is_unchanged_and_matches_its_regex():
    assert verdict_grammar(2) == 'root ::= score ", " score "}"\nscore ::= [1-9] | "10"\n'
    for n in (1, 2, 3):
        lang = gbnf_regex(verdict_grammar(n))
        for text in ["7}", "7, 3}", "10, 1, 2}", "7,3}", "0, 3}"]:
            assert bool(lang.fullmatch(text)) == bool(re.fullmatch(verdict_regex(n), text)), (n, text)
    with pytest.raises(ValueError):
        format_grammar(0)


class GrammarFake(FakeBackend):
    """A fake judge that decodes under a grammar (it records the requests' grammars)."""

    capabilities = Capabilities(constrained_generation=True)


def test_grm_puts_the_format_grammar_on_every_generation_request_and_retry():
    attempts = []

    def judge(shown, seed, i):
        attempts.append(seed)
        return "rambling" if len(attempts) == 1 else verdict([len(s) for s in shown])

    backend = GrammarFake(judge)
    grm = GRM(backend, constrain_format=True, max_retries=1)
    r = grm.score_batch([{"query": "q", "responses": ["a", "bb"]}, {"query": "q", "responses": ["a", "bb", "c"]}], k=2)
    assert all(j.valid for rw in r for j in rw.samples)
    assert len(backend.calls) == 2  # the first sample failed once: a retry, under the grammar too
    for req in backend.prompts:
        assert req.grammar == format_grammar(len(re.findall(r"\[The Begin of Response", req.messages[-1]["content"])))
    assert {req.grammar for req in backend.prompts} == {format_grammar(2), format_grammar(3)}
    plain = GrammarFake()
    GRM(plain).score("q", ["a", "b"], k=2)
    assert all(req.grammar is None for req in plain.prompts)


def test_constrain_format_needs_a_backend_that_generates_under_a_grammar():
    with pytest.raises(ValueError, match="constrain_format needs a backend"):
        GRM(FakeBackend(), constrain_format=True)
    none = OpenAIBackend("http://x/v1", "m", verdict_constraint="none")
    assert not can_constrain_format(none)
    with pytest.raises(ValueError, match="constrain_format"):
        GRM(none, constrain_format=True)
    from rewardscale.backends.transformers_hf import TransformersBackend

    assert not can_constrain_format(TransformersBackend.__new__(TransformersBackend))
    assert can_constrain_format(LlamaCppBackend.on_engine(None, parallel=4, model_id="m"))
    for c in ("grammar", "vllm", "sglang"):
        assert can_constrain_format(OpenAIBackend("http://x/v1", "m", verdict_constraint=c))


class FakeEngine:
    """Stands in for xllamacpp's Server: records the request bodies, answers a valid output."""

    def __init__(self):
        self.bodies = []

    def handle_chat_completions(self, body):
        self.bodies.append(body)
        choice = {"message": {"content": full(2, "7, 3")}, "finish_reason": "stop"}
        return {"choices": [dict(choice, index=i) for i in range(body["n"])], "usage": {"completion_tokens": 5}}


def llamacpp_with(engine) -> LlamaCppBackend:
    return LlamaCppBackend.on_engine(engine, parallel=2, model_id="fixture")  # no model: the engine is a fake


def test_llamacpp_body_carries_the_grammar_only_when_set():
    engine = FakeEngine()
    grm = GRM(llamacpp_with(engine), constrain_format=True, shuffle=False)
    r = grm.score("q", ["a", "b"], k=2)
    assert [j.status for j in r.samples] == [Status.OK, Status.OK]
    (body,) = engine.bodies
    assert body["grammar"] == format_grammar(2) and body["n"] == 2
    engine.bodies.clear()
    GRM(llamacpp_with(engine)).score("q", ["a", "b"], k=1)
    assert "grammar" not in engine.bodies[0]


class Server:
    """A mock OpenAI-compatible chat server that records bodies and answers a valid output."""

    def __init__(self):
        self.bodies = []

    def __call__(self, request):
        body = json.loads(request.content)
        self.bodies.append(body)
        choice = {"message": {"content": full(2, "7, 3")}, "finish_reason": "stop"}
        return httpx.Response(200, json={"choices": [dict(choice, index=i) for i in range(body["n"])]})


def openai_with(mock_upstream, server, constraint):
    return OpenAIBackend(mock_upstream(server) + "/v1", "m", verdict_constraint=constraint)


@pytest.mark.parametrize(
    "constraint, fields",
    [
        ("grammar", lambda g: {"grammar": g}),
        ("vllm", lambda g: {"structured_outputs": {"grammar": g}, "guided_grammar": g}),
        ("sglang", lambda g: {"ebnf": g}),
    ],
)
def test_openai_body_constrains_the_generation_the_servers_way(constraint, fields, mock_upstream):
    server = Server()
    r = GRM(openai_with(mock_upstream, server, constraint), constrain_format=True).score("q", ["a", "b"], k=2)
    assert all(j.status is Status.OK for j in r.samples)
    assert len(server.bodies) == 2  # two shown orders, no retry, no verdict pass
    g = format_grammar(2)
    for body in server.bodies:
        for key, value in fields(g).items():
            assert body[key] == value
        assert {"grammar", "guided_grammar", "structured_outputs", "ebnf"} & set(body) == set(fields(g))
        assert "continue_final_message" not in body  # a fresh generation, not a continuation
    server.bodies.clear()
    GRM(openai_with(mock_upstream, server, constraint)).score("q", ["a", "b"], k=1)
    assert not {"grammar", "guided_grammar", "structured_outputs", "ebnf"} & set(server.bodies[0])


def test_openai_without_a_constraint_refuses_a_grammar_request(mock_upstream):
    server = Server()
    req = GenerationRequest(({"role": "user", "content": "hi"},), n=1, seed=0, grammar=format_grammar(2))
    with pytest.raises(BackendError, match="cannot constrain"):
        openai_with(mock_upstream, server, "none").generate([req], Sampling())
    assert server.bodies == []


def test_store_key_includes_the_grammar_and_is_unchanged_without_one(tmp_path):
    messages = ({"role": "user", "content": "hi"},)
    sampling = Sampling()
    old = hashlib.sha256(
        json.dumps(
            {"model": "m", "messages": [dict(m) for m in messages], "sampling": sampling.to_dict()},
            sort_keys=True,
            ensure_ascii=False,
        ).encode()
    ).hexdigest()
    assert prompt_hash("m", messages, sampling) == prompt_hash("m", messages, sampling, None) == old
    constrained = prompt_hash("m", messages, sampling, format_grammar(2))
    assert constrained != old and constrained != prompt_hash("m", messages, sampling, format_grammar(3))
    assert sample_key(constrained, 0, 0) != sample_key(old, 0, 0)

    # constrained and free samples of the same prompt never serve each other from the store
    path = tmp_path / "s.sqlite"
    free = GrammarFake()
    GRM(free, store=SampleStore(path)).score("q", ["a", "b"], k=2)
    constrained_backend = GrammarFake()
    GRM(constrained_backend, store=SampleStore(path), constrain_format=True).score("q", ["a", "b"], k=2)
    assert sum(r.n for r in constrained_backend.prompts) == 2
    again = GrammarFake()
    GRM(again, store=SampleStore(path), constrain_format=True).score("q", ["a", "b"], k=2)
    assert again.calls == []  # constrained samples resume from the store like any other
    assert len(SampleStore(path)) == 4


def test_cli_constrain_format_reaches_the_grm_on_score_and_bench(tmp_path, monkeypatch):
    from rewardscale import cli, config, models

    backends = []

    def fake_make_backend(name, **options):
        backends.append(GrammarFake())
        return backends[-1]

    monkeypatch.setattr(config, "make_backend", fake_make_backend)
    monkeypatch.setattr(models, "is_assembled", lambda name: True)
    runner = CliRunner()
    score = [
        "score",
        "-q",
        "q",
        "-r",
        "a",
        "-r",
        "b",
        "-k",
        "2",
        "-m",
        models.BASE_MODEL,
    ]  # no judge settings of its own
    res = runner.invoke(cli.app, [*score, "--constrain-format"])
    assert res.exit_code == 0, res.output
    assert [r.grammar for r in backends[-1].prompts] == [format_grammar(2)] * len(backends[-1].prompts)
    args = ["bench", "rewardbench", "-d", str(DATA / "rewardbench.jsonl"), "-k", "1,2", "--out", str(tmp_path / "b")]
    args += ["-m", "fake"]  # the model id keys the store; stored-only reads it under this name
    res = runner.invoke(cli.app, [*args, "--constrain-format", "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert backends[-1].prompts and all(r.grammar == format_grammar(2) for r in backends[-1].prompts)
    # stored-only reads the constrained samples back (the grammar is part of their key)
    res = runner.invoke(cli.app, [*args, "--constrain-format", "--limit", "2", "--stored-only"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "results.json").read_text())["benchmarks"]["rewardbench"]["n_examples"] == 2


def test_cli_constrain_format_with_an_unconstrained_server_is_a_clear_error():
    from rewardscale.cli import app

    args = ["score", "-q", "q", "-r", "a", "-r", "b", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"]
    result = CliRunner().invoke(app, [*args, "--model", "m", "--constrain-format"])
    assert result.exit_code != 0 and "constrain_format" in result.output


@pytest.mark.slow
def test_llamacpp_constrained_format_samples_parse_strictly():
    """The embedded engine under `format_grammar`: each of k=2 samples is a three-part output that
    the strict parser reads, unless the token limit cut it."""
    from rewardscale import models

    backend = LlamaCppBackend(models.model_path(models.FIXTURE_MODEL), parallel=2, ctx_per_slot=2048, threads=2)
    grm = GRM(backend, sampling=Sampling(max_tokens=200), constrain_format=True, max_retries=0)
    with grm:
        r = grm.score("What is 17*23?", ["17*23 = 391.", "17*23 = 401."], k=2)
    assert len(r.samples) == 2
    for j in r.samples:
        if j.finish_reason == "length":
            assert j.text.startswith("Specific Criteria: "), j.text
            continue
        assert j.status is Status.OK, (j.status, j.text)
        assert parse(j.text, 2, j.finish_reason).status is Status.OK
        assert j.text.startswith("Specific Criteria: ") and "\nAnalysis: " in j.text
        assert len(j.scores) == 2 and all(1 <= s <= 10 for s in j.scores)
