"""Sample store: resume after a crash, nothing generated twice, identical results; batch I/O."""

import json

import pytest
from typer.testing import CliRunner

from rewardscale import GRM, Request
from rewardscale.backends.base import Capabilities
from rewardscale.batch import InputError, read_requests, write_jsonl_atomic
from rewardscale.store import SampleStore

from .fakes import FakeBackend, verdict


def seeded_judge(shown, seed, i):
    """Scores depend on seed and completion index, so a repeated or misplaced sample shows."""
    return verdict([1 + (seed + 3 * i + 5 * p + len(s)) % 10 for p, s in enumerate(shown)])


REQUESTS = [Request.make(f"q{i}", ["a" * (i % 4 + 1), "bb", "c"][: 2 + i % 2]) for i in range(12)]


class Crash(RuntimeError):
    pass


class CrashingBackend(FakeBackend):
    """Dies (like a killed process) after `after` backend calls."""

    def __init__(self, after: int):
        super().__init__(seeded_judge)
        self.after = after

    def generate(self, requests, sampling, progress=None):
        if len(self.calls) >= self.after:
            raise Crash("killed")
        return super().generate(requests, sampling, progress)


def generated(backend: FakeBackend) -> int:
    return sum(r.n for r in backend.prompts)


def test_resume_after_crash_generates_nothing_twice_and_matches_uninterrupted(tmp_path):
    reference = GRM(FakeBackend(seeded_judge)).score_batch(REQUESTS, k=6)
    total = sum(len(r.samples) for r in reference)

    store = SampleStore(tmp_path / "s.sqlite")
    crashing = CrashingBackend(after=7)
    with pytest.raises(Crash):
        GRM(crashing, store=store).score_batch(REQUESTS, k=6)
    before = len(store)
    assert 0 < before < total and before == generated(crashing) == store.stats.generated
    store.close()

    store = SampleStore(tmp_path / "s.sqlite")
    fresh = FakeBackend(seeded_judge)
    resumed = GRM(fresh, store=store).score_batch(REQUESTS, k=6)
    assert generated(fresh) == total - before  # only the missing ones
    assert store.stats.reused == before and store.stats.duplicates == 0
    assert len(store) == total
    assert [r.to_dict() for r in resumed] == [r.to_dict() for r in reference]

    # a third run generates nothing
    again = FakeBackend(seeded_judge)
    GRM(again, store=SampleStore(tmp_path / "s.sqlite")).score_batch(REQUESTS, k=6)
    assert again.calls == []
    runs = SampleStore(tmp_path / "s.sqlite").runs()
    assert [r.generated for r in runs[:3]] == [before, total - before, 0]


def test_retries_are_stored_too(tmp_path):
    def flaky(shown, seed, i):
        return "no verdict" if (seed + i) % 3 == 0 else verdict([5] * len(shown))

    store = SampleStore(tmp_path / "s.sqlite")
    first = FakeBackend(flaky)
    r1 = GRM(first, store=store, max_retries=2).score_batch(REQUESTS[:4], k=4)
    assert len(first.calls) > 1 and len(store) == generated(first)
    second = FakeBackend(flaky)
    r2 = GRM(second, store=SampleStore(tmp_path / "s.sqlite"), max_retries=2).score_batch(REQUESTS[:4], k=4)
    assert second.calls == [] and [r.to_dict() for r in r2] == [r.to_dict() for r in r1]


def test_growing_k_tops_up_with_fresh_draws(tmp_path):
    store = SampleStore(tmp_path / "s.sqlite")
    GRM(FakeBackend(seeded_judge), store=store).score("q", ["a", "bb"], k=4)
    more = FakeBackend(seeded_judge)
    r = GRM(more, store=SampleStore(tmp_path / "s.sqlite")).score("q", ["a", "bb"], k=8)
    assert generated(more) == 4 and len(r.samples) == 8
    # the top-up is drawn with a different seed: its texts are not copies of the stored ones
    groups = {}
    for j in r.samples:
        groups.setdefault(j.spec.group, []).append(j.text)
    assert all(len(set(texts)) > 1 for texts in groups.values())


def test_store_key_covers_model_and_sampling(tmp_path):
    from rewardscale.types import Sampling

    store_path = tmp_path / "s.sqlite"
    GRM(FakeBackend(seeded_judge), store=SampleStore(store_path)).score("q", ["a", "b"], k=2)
    other = FakeBackend(seeded_judge)
    GRM(other, store=SampleStore(store_path), sampling=Sampling(temperature=0.9)).score("q", ["a", "b"], k=2)
    assert generated(other) == 2
    renamed = FakeBackend(seeded_judge)
    renamed.model_id = "other-model"
    GRM(renamed, store=SampleStore(store_path)).score("q", ["a", "b"], k=2)
    assert generated(renamed) == 2


def test_read_requests_names_file_line_and_field(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text(
        '{"query": "q", "responses": ["a", "b"], "id": "x"}\n'
        "\n"
        '{"query": "q", "response": ["a"]}\n'
        "{not json\n"
        '{"messages": [{"role": "robot", "content": "hi"}], "responses": ["a"]}\n'
        '{"query": "q2", "responses": ["a"]}\n'
    )
    with pytest.raises(InputError, match=r"in\.jsonl:3: missing field 'responses'"):
        read_requests(p)
    reqs, errors = read_requests(p, skip_invalid=True)
    assert [r.id for r in reqs] == ["x", "line-6"]
    assert [e.line for e in errors] == [3, 4, 5]
    assert "not valid JSON" in errors[1].message and "role 'robot'" in errors[2].message


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    write_jsonl_atomic(out, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl_atomic(out, rows())
    assert out.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_cli_scores_a_file_and_resumes(tmp_path, monkeypatch):
    from rewardscale import cli, config, models

    backends = []

    def fake_make_backend(name, **options):
        backends.append(FakeBackend(seeded_judge))
        return backends[-1]

    monkeypatch.setattr(config, "make_backend", fake_make_backend)
    monkeypatch.setattr(models, "is_assembled", lambda name: True)
    inp = tmp_path / "req.jsonl"
    inp.write_text("\n".join(json.dumps(r.to_dict()) for r in REQUESTS[:5]) + "\n" + '{"query": "bad"}\n')
    out = tmp_path / "rewards.jsonl"
    runner = CliRunner()
    base = ["-m", models.BASE_MODEL]  # the fake plays a model with no judge settings of its own
    res = runner.invoke(cli.app, ["score", str(inp), "-o", str(out), "-k", "4", *base])
    assert res.exit_code == 2 and "req.jsonl:6" in res.output and not out.exists()
    res = runner.invoke(cli.app, ["score", str(inp), "-o", str(out), "-k", "4", "--skip-invalid", *base])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["samples"]) == 4 for r in rows)
    assert (tmp_path / "rewards.jsonl.samples.sqlite").exists()
    first = out.read_text()
    res = runner.invoke(cli.app, ["score", str(inp), "-o", str(out), "-k", "4", "--skip-invalid", *base])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and backends[-1].calls == [] and "0 generated, 20 from the store" in said
    assert out.read_text() == first


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    """Reports are shared files: not mkstemp's private 0600, but 0666 less the umask."""
    import os

    umask = os.umask(0o022)
    try:
        out = tmp_path / "r.jsonl"
        write_jsonl_atomic(out, [{"a": 1}])
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644


class StreamingBackend(FakeBackend):
    """Reports each request as it finishes (`generate_each`, like the openai backend) and dies
    (like a killed process) after `after` requests."""

    capabilities = Capabilities(reports_each=True)

    def __init__(self, after: int | None = None):
        super().__init__(seeded_judge)
        self.after = after
        self.reported = 0

    def generate_each(self, requests, sampling, on_done):
        out = []
        for i, req in enumerate(requests):
            if self.after is not None and i >= self.after:
                raise Crash("killed")
            comps = super().generate([req], sampling)[0]
            on_done(i, comps)
            self.reported += len(comps)
            out.append(comps)
        return out


def test_streamed_jobs_are_committed_before_use_and_resume_generates_nothing_twice(tmp_path):
    reference = GRM(FakeBackend(seeded_judge)).score_batch(REQUESTS, k=6)
    total = sum(len(r.samples) for r in reference)
    store = SampleStore(tmp_path / "s.sqlite")
    crashing = StreamingBackend(after=9)
    with pytest.raises(Crash):
        GRM(crashing, store=store).score_batch(REQUESTS, k=6)
    before = len(store)
    assert 0 < before < total and before == crashing.reported == store.stats.generated  # nothing lost
    store.close()

    store = SampleStore(tmp_path / "s.sqlite")
    fresh = StreamingBackend()
    resumed = GRM(fresh, store=store).score_batch(REQUESTS, k=6)
    assert generated(fresh) == total - before and store.stats.duplicates == 0
    assert len(store) == total and store.stats.generated_tokens == 10 * (total - before)
    assert [r.to_dict() for r in resumed] == [r.to_dict() for r in reference]


def test_openai_backend_streams_into_the_store(tmp_path):
    from rewardscale.backends.openai_http import OpenAIBackend

    from .fake_upstream import FakeUpstream

    with FakeUpstream() as up:
        backend = OpenAIBackend(up.url, "fake", timeout=30, max_retries=3, backoff=0.01)
        first = GRM(backend, store=SampleStore(tmp_path / "s.sqlite")).score_batch(REQUESTS[:6], k=4)
        again_store = SampleStore(tmp_path / "s.sqlite")
        again = GRM(backend, store=again_store).score_batch(REQUESTS[:6], k=4)
        assert again_store.stats.generated == 0 and again_store.stats.reused == 24
        assert max(up.delivered.values()) == 1 and sum(up.delivered.values()) == 24  # each sample drawn once
    assert [r.to_dict() for r in again] == [r.to_dict() for r in first]


def test_the_store_is_a_backend_the_judge_cannot_tell_apart(tmp_path):
    """`GRM(backend, store=...)` reads through `StoredBackend(backend, store)`: the same protocol
    and capabilities as the engine, samples served from the store where they are."""
    from rewardscale.config import ConfigError
    from rewardscale.stored import StoredBackend
    from rewardscale.verdict import can_constrain_format, can_force

    from .test_config import GrammarFake, GrammarVerdictFake

    store = SampleStore(tmp_path / "s.sqlite")
    backend = FakeBackend(seeded_judge)
    grm = GRM(backend, store=store)
    assert isinstance(grm.backend, StoredBackend) and grm.backend.backend is backend and grm.store is store
    assert GRM(backend).store is None
    with pytest.raises(AttributeError, match="StoredBackend"):
        grm.store = store  # the store is the backend's: wrap the backend instead
    plain = GRM(FakeBackend(seeded_judge)).score_batch(REQUESTS[:3], k=4)
    assert [r.to_dict() for r in grm.score_batch(REQUESTS[:3], k=4)] == [r.to_dict() for r in plain]
    stored = StoredBackend(backend, store)
    assert (stored.model_id, stored.capabilities.thread_safe, stored.capabilities.slots) == ("fake", False, None)
    assert not can_force(stored) and not can_constrain_format(stored)  # the engine's capabilities, no more
    with pytest.raises(ConfigError, match="force_verdict"):
        GRM(stored, force_verdict=True)
    grammar, verdicts = StoredBackend(GrammarFake(), store), StoredBackend(GrammarVerdictFake(), store)
    assert can_constrain_format(grammar) and not can_force(grammar) and can_force(verdicts)


def test_a_stored_only_backend_reads_the_store_and_raises_for_what_it_lacks(tmp_path):
    from rewardscale.stored import NotStored, StoredBackend

    store = SampleStore(tmp_path / "s.sqlite")
    first = GRM(FakeBackend(seeded_judge), store=store).score_batch(REQUESTS[:2], k=4)
    with pytest.raises(ValueError, match="model_id"):
        StoredBackend(None, store)
    reader = GRM(StoredBackend(None, store, model_id="fake"))
    assert reader.backend.stored_only and reader.store is store
    assert [r.to_dict() for r in reader.score_batch(REQUESTS[:2], k=4)] == [r.to_dict() for r in first]
    with pytest.raises(NotStored, match="not in the store"):
        reader.score_batch(REQUESTS[2:3], k=4)
    reader.close()  # no engine to close; the store stays open
    assert len(store) > 0
