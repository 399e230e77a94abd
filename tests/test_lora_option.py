"""`--lora PATH[:SCALE]`: GGUF LoRA adapters added to the llama.cpp judge (BackendConfig.lora),
with clear errors, and a model id (hence store keys) of their own."""

from __future__ import annotations

import hashlib
import re

import pytest
import typer
from typer.testing import CliRunner

import rewardscale.backends.llamacpp as llamacpp
from rewardscale import GRM, cli, config, models
from rewardscale.backends import make_backend
from rewardscale.cli import common as cli_common
from rewardscale.config import BackendConfig, ConfigError, JudgeConfig
from rewardscale.store import SampleStore

from .fakes import FakeBackend


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDSCALE_CACHE", str(tmp_path / "cache"))  # the sha256 memo goes here


@pytest.fixture
def adapter(tmp_path):
    path = tmp_path / "adapter.gguf"
    path.write_bytes(b"GGUF-lora-one")
    return path


def sha12(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# --- the config: PATH[:SCALE], checked when built ---


def test_lora_takes_path_and_optional_scale(adapter, tmp_path):
    c = BackendConfig(model="m.gguf", lora=(str(adapter), f"{adapter}:0.5", (str(adapter), -1)))
    assert c.lora == ((str(adapter), 1.0), (str(adapter), 0.5), (str(adapter), -1.0))
    assert BackendConfig(lora=str(adapter)).lora == ((str(adapter), 1.0),)  # one adapter alone
    assert BackendConfig(lora=(str(adapter), 0.25)).lora == ((str(adapter), 0.25),)
    odd = tmp_path / "v1:final.gguf"  # a colon in an existing file's name is not a scale
    odd.write_bytes(b"x")
    assert BackendConfig(lora=(str(odd),)).lora == ((str(odd), 1.0),)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{tmp}/missing.gguf", "no GGUF LoRA adapter file at {tmp}/missing.gguf"),
        ("{tmp}/missing.gguf:0.5", "no GGUF LoRA adapter file at {tmp}/missing.gguf"),
        ("{adapter}:strong", "'strong' is not a scale"),
        ("{adapter}:nan", "the scale must be a finite number"),
        ("{adapter}:inf", "the scale must be a finite number"),
        (":0.5", "no path"),
    ],
)
def test_bad_adapters_are_clear_errors(adapter, tmp_path, spec, message):
    fill = {"tmp": tmp_path, "adapter": adapter}
    with pytest.raises(ConfigError, match=re.escape(message.format(**fill))):
        BackendConfig(lora=(spec.format(**fill),))


@pytest.mark.parametrize("kind", ["openai", "transformers"])
def test_lora_needs_the_llamacpp_backend(adapter, kind):
    with pytest.raises(ConfigError, match=f"needs the llamacpp backend, not {kind}"):
        BackendConfig(kind=kind, model="m", lora=(str(adapter),))


# --- the model id: an adapted judge never shares a store key with the plain model ---


def test_the_model_id_names_each_adapter_by_file_name_and_sha256(adapter, tmp_path):
    plain = BackendConfig(model="m.gguf")
    adapted = BackendConfig(model="m.gguf", lora=(str(adapter),))
    assert plain.model_id == "m.gguf"
    assert adapted.model_id == f"m.gguf+adapter.gguf@{sha12(adapter)}"
    half = BackendConfig(lora=(f"{adapter}:0.5",))
    assert half.model_id == f"{models.store_id(models.DEFAULT_MODEL)}+adapter.gguf@{sha12(adapter)}*0.5"
    assert BackendConfig(model="m.gguf", lora=(str(adapter),)).model_id == adapted.model_id  # same file, same id
    adapter.write_bytes(b"GGUF-lora-two, retrained")  # a retrained adapter under the same name
    assert BackendConfig(model="m.gguf", lora=(str(adapter),)).model_id != adapted.model_id
    assert adapted.options() == {
        "model": "m.gguf",
        "parallel": 8,
        "ctx_per_slot": 8192,
        "lora": [(str(adapter), 1.0)],
        "model_id": adapted.model_id,
    }


def test_an_embedded_judges_id_keeps_its_adapter_checksum_and_adds_the_file(adapter, monkeypatch):
    judge = models.EmbeddedAdapter(
        name="j", description="", base=models.FIXTURE_MODEL, filename="a.gguf", size=1, sha256="ab" * 32, card="c"
    )
    monkeypatch.setattr(models, "ADAPTERS", {"j": judge})
    assert BackendConfig(model="j").model_id == models.store_id("j") == "j@" + "ab" * 6  # what make_backend reports
    assert BackendConfig(model="j", lora=(str(adapter),)).model_id == f"j@{'ab' * 6}+adapter.gguf@{sha12(adapter)}"


def test_a_store_does_not_serve_the_plain_models_samples_to_the_adapted_judge(adapter, tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    for cfg in (BackendConfig(model="m.gguf"), BackendConfig(model="m.gguf", lora=(str(adapter),))):
        backend = FakeBackend()
        backend.model_id = cfg.model_id
        GRM(backend, store=store).score("q", ["a", "bb"], k=2)
        assert backend.calls, f"{cfg.model_id}: nothing generated, the store answered for another model"
    rerun = FakeBackend()
    rerun.model_id = "m.gguf"
    GRM(rerun, store=store).score("q", ["a", "bb"], k=2)
    assert not rerun.calls  # while the plain model's rerun is served from the store
    store.close()


# --- make_backend: embedded adapter first, then the added ones; the id says so ---


class Loaded:
    def __init__(self, path, **options):
        self.path, self.options = path, options
        self.model_id = options.get("model_id")


def test_make_backend_adds_adapters_after_an_embedded_judges_own(adapter, tmp_path, monkeypatch):
    own = tmp_path / "own.gguf"
    monkeypatch.setattr(llamacpp, "LlamaCppBackend", Loaded)
    monkeypatch.setattr(models, "llama_files", lambda name: (tmp_path / "base.gguf", [(own, 1.0)]))
    b = make_backend("llamacpp", model=models.DEFAULT_MODEL, lora=[(str(adapter), 0.5)])
    assert b.path == tmp_path / "base.gguf" and b.options["lora"] == [(own, 1.0), (str(adapter), 0.5)]
    assert b.model_id == f"{models.store_id(models.DEFAULT_MODEL)}+adapter.gguf@{sha12(adapter)}*0.5"
    b = make_backend("llamacpp", model="plain.gguf", lora=[(str(adapter), 1.0)])
    assert b.path == "plain.gguf" and b.options["lora"] == [(str(adapter), 1.0)]
    assert b.model_id == f"plain.gguf+adapter.gguf@{sha12(adapter)}"
    assert make_backend("llamacpp", model="plain.gguf").model_id == "plain.gguf"
    built = config.build_backend(BackendConfig(model="plain.gguf", lora=(str(adapter),), parallel=2))
    assert built.options == {
        "parallel": 2,
        "ctx_per_slot": 8192,
        "lora": [(str(adapter), 1.0)],
        "model_id": built.model_id,
    }
    with pytest.raises(Exception, match="no GGUF LoRA adapter at"):
        make_backend("llamacpp", model="plain.gguf", lora=[(str(tmp_path / "gone.gguf"), 1.0)])


# --- the commands: --lora on score, bench, serve; --sampler-lora on train rft ---


@pytest.fixture
def seen(monkeypatch) -> list[tuple[BackendConfig, JudgeConfig]]:
    calls: list[tuple[BackendConfig, JudgeConfig]] = []

    def capture(backend: BackendConfig, judge: JudgeConfig):
        calls.append((backend, judge))
        raise typer.Exit(3)

    monkeypatch.setattr(cli_common, "build_grm", capture)
    return calls


@pytest.mark.parametrize(
    "command",
    [["score", "-q", "q", "-r", "a", "-r", "b"], ["bench", "rewardbench", "--data", "x.jsonl"], ["serve"]],
)
def test_lora_reaches_the_backend_config_on_every_judge_command(seen, adapter, command):
    result = CliRunner().invoke(cli.app, [*command, "--lora", str(adapter), "--lora", f"{adapter}:0.5"])
    assert result.exit_code == 3, result.output
    ((backend, _),) = seen
    assert backend.lora == ((str(adapter), 1.0), (str(adapter), 0.5))


def test_train_rft_samples_with_an_adapter(seen, adapter, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "1+1?", "chosen": "2", "rejected": "3"}\n')
    args = ["train", "rft", "--data", str(data), "--model", "m.gguf", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli.app, [*args, "--sampler-lora", f"{adapter}:0.5"])
    assert result.exit_code == 3, result.output
    ((backend, _),) = seen
    assert backend == BackendConfig(kind="llamacpp", model="m.gguf", lora=((str(adapter), 0.5),))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lora", "{tmp}/nope.gguf"], "no GGUF LoRA adapter file at {tmp}/nope.gguf"),
        (["--lora", "{adapter}:strong"], "is not a scale"),
        (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--lora", "{adapter}"], "needs the llamacpp"),
    ],
)
def test_score_names_what_is_wrong_with_an_adapter(seen, adapter, tmp_path, extra, message):
    fill = {"tmp": tmp_path, "adapter": adapter}
    args = ["score", "-q", "q", "-r", "a", "-r", "b", *(a.format(**fill) for a in extra)]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2 and not seen, result.output
    assert message.format(**fill) in " ".join(result.output.split())


def test_bench_stored_only_reads_the_adapted_judges_samples(monkeypatch, adapter, tmp_path):
    import rewardscale.bench as bench

    ids = []

    def fake_run_bench(grm, *args, **kwargs):
        ids.append(grm.backend.model_id)
        raise ValueError("stop here")

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    args = ["bench", "rewardbench", "-d", "x.jsonl", "--out", str(tmp_path), "-m", "m.gguf", "--stored-only"]
    assert CliRunner().invoke(cli.app, [*args, "--lora", str(adapter)]).exit_code == 2
    assert ids == [f"m.gguf+adapter.gguf@{sha12(adapter)}"]
