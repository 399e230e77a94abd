"""Bad input and secrets, as a user meets them on the command line: each ends in a clear error (no
traceback, nothing scored first), and secrets never reach the store, the output or the log."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from rewardscale import Sampling
from rewardscale.backends import BackendError, GenerationRequest
from rewardscale.backends.base import MissingExtra
from rewardscale.backends.openai_http import OpenAIBackend
from rewardscale.batch import write_jsonl_atomic
from rewardscale.cli import app
from rewardscale.cli.common import fail
from rewardscale.redact import redact_argv
from rewardscale.store import SampleStore, StoreError

from .fake_upstream import FakeUpstream
from .server_proc import CLI, ROOT

runner = CliRunner()
GOOD = json.dumps({"id": "a", "query": "2+2?", "responses": ["4", "five"]}) + "\n"


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as up:
        yield up


def score(upstream, inp: Path, *extra: str):
    args = ["score", str(inp), "--backend", "openai", "--base-url", upstream.url, "--model", "fake", "-k", "2"]
    return runner.invoke(app, [*args, "--max-retries", "0", *extra])


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_non_utf8_bytes_name_the_line_and_can_be_skipped(upstream, tmp_path):
    inp = write(tmp_path / "in.jsonl", GOOD.encode() + b'{"query": "caf\xe9", "responses": ["x"]}\n')
    r = score(upstream, inp, "-o", str(tmp_path / "out.jsonl"))
    assert r.exit_code == 2 and "in.jsonl:2: not valid UTF-8 (byte 0xe9" in r.output and "Traceback" not in r.output
    r = score(upstream, inp, "-o", str(tmp_path / "out.jsonl"), "--skip-invalid")
    assert r.exit_code == 0, r.output
    assert "skipped" in r.output and len((tmp_path / "out.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "line,message",
    [
        (b'{"query": "\\ud800", "responses": ["x"]}', "lone surrogate"),
        (b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b', "responses": ["x"]}', "nested too deeply"),
    ],
    ids=["surrogate", "deep"],
)
def test_hostile_json_is_a_clear_error(upstream, tmp_path, line, message):
    inp = write(tmp_path / "in.jsonl", line + b"\n")
    r = score(upstream, inp)
    assert r.exit_code == 2 and message in r.output and "in.jsonl:1" in r.output and "Traceback" not in r.output


def test_an_output_that_is_a_directory_fails_before_scoring(upstream, tmp_path):
    inp = write(tmp_path / "in.jsonl", GOOD.encode())
    served = sum(upstream.counts.values())
    r = score(upstream, inp, "-o", str(tmp_path))
    assert r.exit_code == 2 and "is a directory" in r.output
    assert sum(upstream.counts.values()) == served, "nothing was scored"


def test_error_messages_are_not_rich_markup(tmp_path, capsys):
    odd = tmp_path / "a[/]b[bold].jsonl"
    r = runner.invoke(app, ["score", str(odd)])
    assert r.exit_code == 2 and "a[/]b[bold].jsonl" in r.output and "MarkupError" not in r.output
    with pytest.raises(typer.Exit):
        fail(str(MissingExtra("torch", "transformers")))
    assert "pip install 'rewardscale[transformers]'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["corrupt", "directory", "read-only"])
def test_an_unusable_store_is_a_clear_error(upstream, tmp_path, kind):
    store = tmp_path / "store.sqlite"
    if kind == "corrupt":
        store.write_text("this is not a database\n" * 100)
    elif kind == "directory":
        store.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files")
        SampleStore(store).close()
        store.chmod(0o444)
    inp = write(tmp_path / "in.jsonl", GOOD.encode())
    r = score(upstream, inp, "-o", str(tmp_path / "out.jsonl"), "--store", str(store))
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "sample store" in r.output and "--no-store" in r.output


def test_the_api_key_never_reaches_the_store_or_the_output(upstream, tmp_path):
    key = "sk-test-DO-NOT-STORE-1234"
    inp, out = write(tmp_path / "in.jsonl", GOOD.encode()), tmp_path / "out.jsonl"
    args = ["score", str(inp), "-o", str(out), "--backend", "openai", "--base-url", upstream.url, "--model", "fake"]
    cmd = [sys.executable, *CLI, *args, "-k", "2", "--api-key", key]  # a real process: its own argv is stored
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    with sqlite3.connect(f"{out}.samples.sqlite") as db:
        (argv,) = db.execute("SELECT argv FROM runs").fetchone()
    assert key not in argv and "--api-key" in argv and "***" in argv
    assert key not in run.stdout + run.stderr and key not in out.read_text()
    assert key not in Path(f"{out}.samples.sqlite").read_bytes().decode(errors="replace")


def test_redact_argv_masks_both_spellings_and_known_values(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    argv = ["score", "--api-key", "sk-1", "--auth-token=tok", "--base-url", "http://h/?key=sk-env"]
    assert redact_argv(argv) == ["score", "--api-key", "***", "--auth-token=***", "--base-url", "http://h/?key=***"]


def test_an_upstream_that_echoes_the_key_does_not_leak_it_in_errors(mock_upstream):
    key = "sk-echoed-secret"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"bad key: {request.headers['authorization']}")

    b = OpenAIBackend(mock_upstream(handler) + "/v1", "m", api_key=key)
    with pytest.raises(BackendError) as e:
        b.generate([GenerationRequest(({"role": "user", "content": "hi"},), n=1, seed=1)], Sampling())
    assert key not in str(e.value) and "***" in str(e.value)


def test_a_second_process_on_one_store_is_warned(upstream, tmp_path):
    inp, out = write(tmp_path / "in.jsonl", GOOD.encode()), tmp_path / "out.jsonl"
    holder = SampleStore(Path(f"{out}.samples.sqlite"))  # another run holds the store's lock
    try:
        r = score(upstream, inp, "-o", str(out))
    finally:
        holder.close()
    assert r.exit_code == 0 and "another process is using the sample store" in r.output
    assert "another process" not in score(upstream, inp, "-o", str(out)).output


def test_a_request_given_twice_is_generated_once(upstream, tmp_path):
    same = {"query": "Capital of France?", "responses": ["Paris", "Lyon"]}
    lines = [json.dumps({**same, "id": i}) + "\n" for i in ("x", "y")]
    inp, out = write(tmp_path / "in.jsonl", "".join(lines).encode()), tmp_path / "out.jsonl"
    r = score(upstream, inp, "-o", str(out))
    assert r.exit_code == 0, r.output
    with sqlite3.connect(f"{out}.samples.sqlite") as db:
        assert db.execute("SELECT generated, duplicates FROM runs").fetchone() == (2, 0)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["x", "y"] and rows[0]["rewards"] == rows[1]["rewards"]


def test_a_killed_write_leaves_no_temp_file_behind(tmp_path):
    out = tmp_path / "out.jsonl"
    dead = tmp_path / ".out.jsonl.999999999.abc.tmp"  # a writer that was killed
    live = tmp_path / f".out.jsonl.{os.getpid()}.def.tmp"  # one still writing
    dead.write_text("half")
    live.write_text("half")
    write_jsonl_atomic(out, [{"a": 1}])
    assert not dead.exists() and live.exists() and out.read_text() == '{"a": 1}\n'


def test_store_errors_name_the_file(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"\x00" * 4096)
    with pytest.raises(StoreError, match=r"x\.sqlite.*--no-store"):
        SampleStore(bad)


def test_a_single_query_writes_its_reward_to_output(upstream, tmp_path):
    """-o with --query writes the reward (and its samples) as one JSONL line, as a file's rewards;
    a -o that is a folder fails before anything is scored."""
    base = ["score", "-q", "2+2?", "-r", "4", "-r", "five", "--backend", "openai", "--base-url", upstream.url]
    base += ["--model", "fake", "-k", "2", "--max-retries", "0", "--no-store"]
    out = tmp_path / "one.jsonl"
    r = runner.invoke(app, [*base, "-o", str(out)])
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["request"]["responses"] == ["4", "five"] and len(row["samples"]) == 2
    served = sum(upstream.counts.values())
    r = runner.invoke(app, [*base, "-o", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.output
    assert sum(upstream.counts.values()) == served
