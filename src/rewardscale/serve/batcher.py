"""Dynamic batching: gather GRM requests from concurrent HTTP calls into shared `score_batch` calls.

One worker thread owns the GRM (backends need not be thread-safe); a backend that says it is
(`thread_safe`, e.g. openai) may get several workers, so a batch stuck on a hung upstream does not
hold the calls behind it. Each batch runs under a deadline (`backends.deadline`): the latest of its
calls' deadlines, or sooner once every call in it is gone; the openai backend then cancels the
upstream requests still running. Calls put their requests in a bounded queue (full -> QueueFull,
the server answers 503). The worker takes up to `max_batch`
requests that share a k, waiting at most `max_wait_s` after the oldest one arrived for more to
come; requests that queued while the backend was busy are taken at once. A call's requests may
be split over several batches; its future resolves when all are scored. If a batched backend call
raises, each of its requests is scored alone, so one bad request fails only its own call (not for
a BackendError: every request already failed on its own, so that would only send them again).

With a meta RM (MetaRM@k), batches still group by k only: the k samples of every request in the
batch are drawn together and the meta RM scores them all in one pass (`score_batch(meta_rm=)`);
each request then votes with its own call's k_meta (`GRM.vote`), so calls with different k_meta
share backend calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from ..backends.base import BackendError, Deadline, capabilities_of, deadline
from ..errors import RewardscaleError
from ..grm import GRM, SampleScorer
from ..types import Judgment, Request, Reward, Status
from ..vote import k_meta_at
from .metrics import Metrics

log = logging.getLogger("rewardscale.serve")


class QueueFull(RewardscaleError, RuntimeError):
    """The queue cannot take a call's requests now; retry later."""


class Expired(RewardscaleError, TimeoutError):
    """A call's deadline passed before its requests reached the backend."""


class TimedScorer:
    """A meta RM that records its scoring time and counts in the server's metrics."""

    def __init__(self, meta_rm: SampleScorer, metrics: Metrics):
        self.meta_rm = meta_rm
        self.metrics = metrics

    def score_samples(
        self, requests: Sequence[Request], judgments: Sequence[Sequence[Judgment]]
    ) -> list[list[float | None]]:
        start = time.monotonic()
        q = self.meta_rm.score_samples(requests, judgments)
        scored = sum(x is not None for row in q for x in row)
        self.metrics.metarm(len(requests), scored, time.monotonic() - start)
        return q


@dataclass(eq=False)
class Job:
    """One HTTP call's GRM requests, scored with one k (and, with a meta RM, voting with the top
    `k_meta` samples by q); `future` resolves to their Rewards in order."""

    requests: list[Request]
    k: int
    deadline: float
    k_meta: int | None = None
    future: Future = field(default_factory=Future)
    results: list[Reward | None] = field(default_factory=list)
    remaining: int = 0

    def __post_init__(self) -> None:
        self.results = [None] * len(self.requests)
        self.remaining = len(self.requests)

    @property
    def dead(self) -> bool:
        """Nobody waits for it any more (failed, cancelled by a client timeout, or past its deadline)."""
        return self.future.done() or time.monotonic() > self.deadline

    def fail(self, exc: BaseException) -> None:
        try:
            if not self.future.done():
                self.future.set_exception(exc)
        except InvalidStateError:  # cancelled between the check and the set
            pass

    def put(self, index: int, reward: Reward) -> None:
        self.results[index] = reward
        self.remaining -= 1
        if self.remaining == 0:
            try:
                if not self.future.done():
                    self.future.set_result(list(self.results))
            except InvalidStateError:
                pass


class Outcomes:
    """The last `size` GRM requests' outcomes (scored by the judge, or not: every sample a backend
    error, the batch failed, or the call expired): what /health calls a failing upstream."""

    def __init__(self, size: int = 20):
        self._recent: deque[bool] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, ok: bool, n: int = 1) -> None:
        with self._lock:
            self._recent.extend([ok] * n)

    def failures(self) -> tuple[int, int, int]:
        """(failed, of) over the window, and how many of the latest failed in a row."""
        with self._lock:
            streak = 0
            for ok in reversed(self._recent):
                if ok:
                    break
                streak += 1
            return sum(not ok for ok in self._recent), len(self._recent), streak


def judged(reward: Reward) -> bool:
    """Whether the judge answered for this request (some sample is not a backend error)."""
    return any(j.status is not Status.BACKEND_ERROR for j in reward.samples)


@dataclass(frozen=True, eq=False)
class _Item:
    job: Job
    index: int
    enqueued: float


class DynamicBatcher:
    """Bounded queue + one worker thread feeding `GRM.score_batch`.

    max_batch: most GRM requests per backend call (1 = no batching, one request per call).
    max_wait_s: bounded wait for more requests after the oldest queued one arrived.
    max_queue: most GRM requests waiting (not counting the batch being scored).
    meta_rm: a meta RM; when given, every job is scored with MetaRM@k (its `k_meta`, default
        k // 2) instead of Voting@k.
    workers: batches scored side by side (1 unless the backend is `thread_safe` and there is no
        meta RM).
    """

    def __init__(
        self,
        grm: GRM,
        max_batch: int = 32,
        max_wait_s: float = 0.01,
        max_queue: int = 4096,
        metrics: Metrics | None = None,
        meta_rm: SampleScorer | None = None,
        workers: int = 1,
    ):
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0 or workers < 1:
            raise ValueError("max_batch, max_queue and workers must be >= 1 and max_wait_s >= 0")
        self.grm = grm
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.metrics = metrics or Metrics()
        self.meta_rm = None if meta_rm is None else TimedScorer(meta_rm, self.metrics)
        safe = capabilities_of(grm.backend).thread_safe and meta_rm is None
        self.workers = workers if safe else 1
        self.outcomes = Outcomes()
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._running: dict[int, tuple[int, float]] = {}  # worker -> (requests, started) of its batch
        self._threads: list[threading.Thread] = []

    # --- state, read by /health and /metrics ---

    @property
    def depth(self) -> int:
        """GRM requests waiting in the queue."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """GRM requests in the backend calls now running (0 when idle)."""
        return sum(n for n, _ in list(self._running.values()))

    @property
    def oldest_in_flight_s(self) -> float:
        """How long the oldest running backend call has been running (0 when idle)."""
        started = [t for _, t in list(self._running.values())]
        return time.monotonic() - min(started) if started else 0.0

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # --- lifecycle ---

    def start(self) -> None:
        if not self._threads:
            for w in range(self.workers):
                t = threading.Thread(target=self._run, args=(w,), name=f"rewardscale-batcher-{w}", daemon=True)
                self._threads.append(t)
                t.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop taking work; calls still queued fail with a shutdown error."""
        with self._cond:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for item in pending:
            item.job.fail(RuntimeError("the server is shutting down"))
        end = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if end is None else max(0.0, end - time.monotonic()))

    # --- producer side ---

    def submit(self, requests: Sequence[Request], k: int, timeout_s: float, k_meta: int | None = None) -> Job:
        """Queue one call's requests; raise QueueFull (nothing queued) when they do not fit.

        `k_meta` (only with a meta RM; checked here, before anything is queued): the samples that
        vote (`vote.k_meta_at`: default k // 2, capped at k). ValueError for a k_meta below 1 or
        without a meta RM."""
        if self.meta_rm is None:
            if k_meta is not None:
                raise ValueError("k_meta needs a meta RM (MetaRM@k); this batcher has none")
        else:
            k_meta = k_meta_at(k, k_meta)
        job = Job(list(requests), k, time.monotonic() + timeout_s, k_meta=k_meta)
        if not job.requests:
            job.future.set_result([])
            return job
        with self._cond:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            if len(self._queue) + len(job.requests) > self.max_queue:
                self.metrics.reject("queue_full", len(job.requests))
                raise QueueFull(
                    f"the queue holds {len(self._queue)} of {self.max_queue} requests; "
                    f"this call adds {len(job.requests)}: retry later"
                )
            now = time.monotonic()
            self._queue.extend(_Item(job, i, now) for i in range(len(job.requests)))
            self._cond.notify_all()
        return job

    # --- worker side ---

    def _take(self, worker: int) -> list[_Item] | None:
        """Block until a batch is ready (or stopping: None). Drops items nobody waits for."""
        with self._cond:
            while True:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return None
                self._drop_dead()
                if not self._queue:
                    continue
                first = self._queue[0]
                deadline = first.enqueued + self.max_wait_s
                while not self._stopping:
                    matching = sum(1 for it in self._queue if it.job.k == first.job.k)
                    left = deadline - time.monotonic()
                    if matching >= self.max_batch or left <= 0:
                        break
                    self._cond.wait(left)
                if self._stopping:
                    return None
                batch: list[_Item] = []
                keep: deque[_Item] = deque()
                for it in self._queue:
                    if len(batch) < self.max_batch and it.job.k == first.job.k and not it.job.dead:
                        batch.append(it)
                    else:
                        keep.append(it)
                self._queue = keep
                self._drop_dead()
                if batch:
                    self._running[worker] = (len(batch), time.monotonic())
                    return batch

    def _drop_dead(self) -> None:
        """Remove queued items of calls that failed, were cancelled or are past their deadline."""
        dead = [it for it in self._queue if it.job.dead]
        if not dead:
            return
        self._queue = deque(it for it in self._queue if not it.job.dead)
        for it in dead:
            if time.monotonic() > it.job.deadline:
                it.job.fail(Expired("the call timed out before it was scored"))
                self.outcomes.add(False)
        self.metrics.reject("expired_or_cancelled", len(dead))

    def _run(self, worker: int = 0) -> None:
        while True:
            batch = self._take(worker)
            if batch is None:
                return
            try:
                self._score(batch)
            except BaseException as e:  # never let the worker die: fail this batch, keep serving
                log.exception("batch failed")
                self.outcomes.add(False, len(batch))
                for it in batch:
                    it.job.fail(e)
            finally:
                self._running.pop(worker, None)

    def _score(self, batch: list[_Item]) -> None:
        k = batch[0].job.k
        requests = [it.job.requests[it.index] for it in batch]
        start = time.monotonic()
        # the batch's upstream work ends when the last of its calls stops waiting
        scope = Deadline(max(it.job.deadline for it in batch), cancelled=lambda: all(it.job.dead for it in batch))
        try:
            with deadline(scope):
                rewards = self.grm.score_batch(requests, k=k, meta_rm=self.meta_rm)
            if self.meta_rm is not None:  # samples and q are shared; each call votes with its own k_meta
                rewards = [
                    r if r.k_meta == it.job.k_meta else self.grm.vote(r.request, r.samples, k, k_meta=it.job.k_meta)
                    for it, r in zip(batch, rewards)
                ]
        except Exception as e:
            # every request failed on its own (BackendError): scoring them one by one would only
            # send all of them again; any other error may be one poisoned request's
            if len(batch) == 1 or isinstance(e, BackendError) or all(it.job.dead for it in batch):
                self.metrics.batch(len(batch), time.monotonic() - start, ["backend_error"] * k * len(batch))
                self.outcomes.add(False, len(batch))
                for it in batch:
                    self._fail(it, e)
                return
            log.warning("batched call of %d requests failed (%s); scoring them one by one", len(batch), e)
            for it in batch:
                if it.job.dead:
                    self._fail(it, e)
                else:
                    self._score([it])
            return
        statuses = [s for r in rewards for j in r.samples for s in [j.status.value] + ["retried"] * (j.attempts - 1)]
        self.metrics.batch(len(batch), time.monotonic() - start, statuses)
        for it, reward in zip(batch, rewards):
            self.outcomes.add(judged(reward))
            if time.monotonic() > it.job.deadline:  # its upstream work was cut at the deadline: a 504
                it.job.fail(Expired("the call's deadline passed while it was scored"))
            else:
                it.job.put(it.index, reward)

    @staticmethod
    def _fail(it: _Item, e: BaseException) -> None:
        """Fail an item's call with `e`, or as expired (a 504) when its deadline has passed: the
        failure then comes from its upstream work being cancelled."""
        late = time.monotonic() > it.job.deadline
        it.job.fail(Expired("the call's deadline passed while it was scored") if late else e)
