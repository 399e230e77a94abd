"""Generation through the sample store: `StoredBackend(backend, store)` is a backend like any
other, whose samples come from the store where they are and are stored before use where they are
not; nothing above it knows a store exists. `StoredBackend(None, store, model_id=M)` reads the
store only. Keys, schema and the writer thread are `rewardscale.store`'s.

`stored_generate` looks each (job, index) up by its content-hash key (`store.sample_key`),
generates only what is missing, and commits each job's new completions as soon as that job
finishes, so a run killed at any point (even `kill -9`) resumes where it stopped and never
generates a stored sample again.

A backend with `generate_each` (openai) gets every missing job in one call and reports each job
as it finishes; a writer thread commits the finished jobs, all those waiting in one transaction,
and the call returns only once they are committed, so a sample is durable before it is used and
a fast fleet is not held by one commit (and one HTTP client) per job. Other backends get one
prompt per call from a small thread pool (as many in flight as the backend decodes together), so
results are committed one job at a time while the backend still batches everything in flight.

A job that is only partly stored (e.g. k grew since the last run) is topped up with `n = missing`
completions drawn with a seed derived from the job's seed and the first missing index, so the
new completions are fresh draws, not repeats of stored ones.

Forced verdicts and the expected-mode verdict re-decodes (`rewardscale.verdict`; requests with
`GenerationRequest.verdict`, in the same `generate` call) are stored the same way in their own
table (`stored_verdicts`), keyed by (model, messages, the sample's text up to the
verdict, n, seed, logprobs asked, temperature, top_p), so a forced run resumes without forcing again
and a stored-only report reads its forced verdicts.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

from .backends.base import Backend, BackendError, Capabilities, Completion, GenerationRequest, capabilities_of, failed
from .errors import RewardscaleError
from .store import JobWriter, SampleStore, prompt_hash, sample_key, topup_seed, verdict_key
from .types import Sampling


@dataclass
class _Plan:
    """One job's lookup result: keys per completion index and which indices are missing."""

    job: GenerationRequest
    phash: str
    keys: list[str]
    missing: list[int]


def stored_generate(
    backend: Backend,
    jobs: Sequence[GenerationRequest],
    sampling: Sampling,
    store: SampleStore,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> list[list[Completion]]:
    """`backend.generate(jobs)`, but served from the store where possible and stored as it goes.

    Returns exactly what `backend.generate` would: `job.n` completions per job, in order.
    """
    model = getattr(backend, "model_id", type(backend).__name__)
    plans = []
    for job in jobs:
        ph = prompt_hash(model, job.messages, sampling, job.grammar, job.prefix)
        plans.append(_Plan(job, ph, [sample_key(ph, job.seed, i) for i in range(job.n)], []))
    found = store.get_many([k for p in plans for k in p.keys])
    results: list[list[Completion | None]] = []
    reused = 0
    for p in plans:
        results.append([found.get(k) for k in p.keys])
        p.missing = [i for i, c in enumerate(results[-1]) if c is None]
        reused += p.job.n - len(p.missing)
    if reused:
        store.count_reused(reused)
        if progress:
            progress(reused)
    # a request given twice (the same prompt, seed and keys) is generated once and shared
    first: dict[tuple[str, ...], int] = {}
    shared: dict[int, list[int]] = {}  # the job generated -> every job that takes its completions
    for ji, p in enumerate(plans):
        if p.missing:
            shared.setdefault(first.setdefault(tuple(p.keys), ji), []).append(ji)
    todo = [(ji, plans[ji]) for ji in shared]
    errors: list[str] = []

    def missing_job(p: _Plan) -> GenerationRequest:
        seed = p.job.seed if len(p.missing) == p.job.n else topup_seed(p.job.seed, p.missing[0])
        return replace(p.job, n=len(p.missing), seed=seed)

    def take(ji: int, comps: list[Completion]) -> None:
        errors.extend(c.error for c in comps[:1] if c.error)
        for dup in shared[ji]:
            for i, c in zip(plans[dup].missing, comps):
                results[dup][i] = c
            if progress:
                progress(len(comps))

    if todo and capabilities_of(backend).reports_each:
        # one backend call for every missing job; each is committed (by the writer) as it finishes
        writer = JobWriter(store, model)

        def done(i: int, comps: list[Completion]) -> None:
            _, p = todo[i]
            writer.put(p.phash, p.job.seed, [(m, p.keys[m], c) for m, c in zip(p.missing, comps)])

        try:
            generated = backend.generate_each([missing_job(p) for _, p in todo], sampling, done)  # type: ignore[attr-defined]
        finally:
            writer.close()  # everything generated is durable before any of it is used
        for (ji, _), comps in zip(todo, generated):
            take(ji, comps)
        return [[c for c in r if c is not None] for r in results]

    def run(ji: int, p: _Plan) -> tuple[int, list[Completion]]:
        sub = missing_job(p)
        try:
            comps = backend.generate([sub], sampling, None)[0]
        except BackendError as e:
            # one job out of retries fails alone, as it would in one backend call for all jobs
            comps = failed(sub.n, str(e))
        store.put_many(model, p.phash, p.job.seed, [(i, p.keys[i], c) for i, c in zip(p.missing, comps)])
        return ji, comps

    for ji, comps in _in_pool(todo, run, _width(backend, workers)):
        take(ji, comps)
    if todo and len(errors) == len(todo):  # what `backend.generate` does when every request failed
        raise BackendError(f"every request failed; first error: {errors[0]}")
    return [[c for c in r if c is not None] for r in results]


def stored_verdicts(
    backend: Backend,
    requests: Sequence[GenerationRequest],
    sampling: Sampling,
    store: SampleStore,
    workers: int | None = None,
) -> list[Completion]:
    """`backend.generate(requests)` for verdict requests (one completion each), served from the
    store where possible; each new verdict is committed as soon as it is decoded (one request per
    backend call, many in flight)."""
    model = getattr(backend, "model_id", type(backend).__name__)
    keys = [verdict_key(model, r, sampling) for r in requests]
    found = store.get_verdicts(keys)
    results: list[Completion | None] = [found.get(k) for k in keys]
    todo = [(i, requests[i]) for i, r in enumerate(results) if r is None]

    def run(i: int, req: GenerationRequest) -> tuple[int, Completion]:
        try:
            vc = backend.generate([req], sampling)[0][0]
        except BackendError as e:  # the verdict fails alone; its sample keeps its text
            vc = Completion("", "error", error=str(e))
        store.put_verdict(model, keys[i], vc)
        return i, vc

    for i, vc in _in_pool(todo, run, _width(backend, workers)):
        results[i] = vc
    return [r or Completion("", "error", error="no result") for r in results]


def _width(backend: object, workers: int | None) -> int:
    """Backend calls in flight at once: as many as the backend serves together."""
    return workers or capabilities_of(backend).concurrency or 8


def _in_pool(todo: Sequence[tuple], fn: Callable, width: int):
    """Run `fn(*item)` for each item on a thread pool of `width`; yield the results as they finish."""
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(width, len(todo))), thread_name_prefix="store") as pool:
        # each call runs in a copy of the caller's context, so a deadline set around it applies
        futures = [pool.submit(contextvars.copy_context().run, fn, *item) for item in todo]
        for fut in as_completed(futures):
            yield fut.result()


class NotStored(RewardscaleError, RuntimeError):
    """A stored-only `StoredBackend` was asked for a sample that is not in the store."""


class _Unstored:
    """The engine behind a stored-only `StoredBackend`: whatever the store lacks, it cannot draw."""

    def __init__(self, model_id: str):
        self.model_id = model_id

    def generate(self, requests: Sequence[GenerationRequest], sampling: Sampling, progress=None) -> list:
        """A verdict missing from the store leaves its sample as it was (e.g. truncated), marked;
        a missing sample raises NotStored."""
        if any(r.verdict is None for r in requests):
            raise NotStored(f"{len(requests)} prompt(s) not in the store")
        return [[Completion("", "error", error="not in the store")] for _ in requests]


class StoredBackend:
    """A backend read through a sample store: `generate` answers from `store` where it has the
    sample or verdict, asks `backend` for the rest and stores it before returning
    (`stored_generate` for samples, `stored_verdicts` for verdict requests); the engine's
    capabilities pass through unchanged.

    `StoredBackend(None, store, model_id=M)` is stored only: it generates nothing, reads the
    samples drawn by model M, and raises NotStored for a missing sample (a missing verdict comes
    back as a failed one, so its sample stays as it was). It can read constrained samples and
    forced verdicts, which are keyed like any other.
    """

    def __init__(self, backend: Backend | None, store: SampleStore, model_id: str | None = None):
        if backend is None and model_id is None:
            raise ValueError("a stored-only StoredBackend needs the model_id its samples were drawn with")
        self.backend = backend
        self.store = store
        self._engine: Any = backend if backend is not None else _Unstored(model_id or "")

    @property
    def stored_only(self) -> bool:
        """Whether it generates nothing (no engine behind the store)."""
        return self.backend is None

    @property
    def model_id(self) -> str:
        return getattr(self._engine, "model_id", type(self._engine).__name__)

    @property
    def capabilities(self) -> Capabilities:
        """The engine's, less `reports_each` (the store calls the engine's `generate_each` itself
        and has none of its own). Stored only: it reads constrained samples and verdicts as any
        other, and decodes nothing in slots."""
        if self.stored_only:
            return Capabilities(
                constrained_generation=True, verdicts=True, verdict_constraint="grammar", continuation=True
            )
        return replace(capabilities_of(self.backend), reports_each=False)

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: Sampling,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Completion]]:
        verdicts = [i for i, r in enumerate(requests) if r.verdict is not None]
        if not verdicts:
            return stored_generate(self._engine, requests, sampling, self.store, progress)
        samples = [i for i, r in enumerate(requests) if r.verdict is None]
        out: list[list[Completion]] = [[] for _ in requests]
        if samples:
            done = stored_generate(self._engine, [requests[i] for i in samples], sampling, self.store, progress)
            for i, comps in zip(samples, done):
                out[i] = comps
        decoded = stored_verdicts(self._engine, [requests[i] for i in verdicts], sampling, self.store)
        for i, vc in zip(verdicts, decoded):
            out[i] = [vc]
        return out

    def close(self) -> None:
        """Close the engine; the store stays open (it belongs to whoever opened it)."""
        if self.backend is not None:
            self.backend.close()
