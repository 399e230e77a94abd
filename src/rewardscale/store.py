"""Sample store: every generated completion is written to SQLite (WAL) before it is used.

`rewardscale.stored.StoredBackend(backend, store)` is how a judge uses it (generation through
the store lives in `stored.py`); this module is the database: keys, schema, the writer thread.

A completion is keyed by a content hash of (model id, rendered messages, sampling parameters,
grammar when there is one, seed, completion index); forced verdicts and expected-mode verdict
re-decodes (`rewardscale.verdict`) in their own table, keyed by (model, messages, the sample's
text up to the verdict, n, seed, logprobs asked, temperature, top_p). `JobWriter` commits
finished jobs from a thread, those waiting in one transaction, before the caller uses them.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .backends.base import Completion, GenerationRequest, TokenLogprobs
from .errors import RewardscaleError
from .plan import derive_seed
from .redact import redact_argv
from .types import Sampling

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    tokens INTEGER NOT NULL DEFAULT 0,
    run INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    logprobs TEXT,
    run INTEGER NOT NULL,
    created REAL NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    argv TEXT NOT NULL DEFAULT '',
    generated INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0
);
"""


def prompt_hash(
    model: str, messages: Sequence[dict], sampling: Sampling, grammar: str | None = None, prefix: str | None = None
) -> str:
    """Hash of what determines a prompt's completions, apart from seed and index. A grammar
    (constrained generation) and an assistant prefix the completions continue are part of it;
    without them the hash is what it always was."""
    content: dict = {"model": model, "messages": [dict(m) for m in messages], "sampling": _sampling_dict(sampling)}
    if grammar is not None:
        content["grammar"] = grammar
    if prefix is not None:
        content["prefix"] = prefix
    payload = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _sampling_dict(sampling: Sampling) -> dict:
    """`sampling.to_dict()`, once per Sampling (asdict costs more than the rest of a prompt hash);
    read only."""
    return sampling.to_dict()


def sample_key(phash: str, seed: int, index: int) -> str:
    """The store key of completion `index` of a prompt drawn with `seed`."""
    return hashlib.sha256(f"{phash}:{seed}:{index}".encode()).hexdigest()


def verdict_key(model: str, req: GenerationRequest, sampling: Sampling) -> str:
    """The store key of a constrained verdict continuation (`req.verdict` set). Only temperature
    and top_p of the sampling matter (a verdict's token limit is fixed by its responses), so a
    critique budget does not change it. The same content as when verdicts had a request type of
    their own (n: the responses), so stores written then answer now."""
    content = {
        "model": model,
        "messages": [dict(m) for m in req.messages],
        "prefix": req.prefix,
        "n": req.verdict,
        "seed": req.seed,
        "top_logprobs": req.top_logprobs,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    return hashlib.sha256(("verdict:" + json.dumps(content, sort_keys=True, ensure_ascii=False)).encode()).hexdigest()


def _logprobs_json(lps: Sequence[TokenLogprobs] | None) -> str | None:
    return None if lps is None else json.dumps([[t.token, t.logprob, [list(x) for x in t.top]] for t in lps])


def _logprobs_from_json(text: str | None) -> tuple[TokenLogprobs, ...] | None:
    if text is None:
        return None
    return tuple(TokenLogprobs(tok, lp, tuple((a, b) for a, b in top)) for tok, lp, top in json.loads(text))


def topup_seed(seed: int, first_missing: int) -> int:
    """Seed for completions [first_missing, n) of a partly stored job: fresh, not repeats."""
    return derive_seed("topup", seed, first_missing)


F = TypeVar("F", bound=Callable[..., Any])


class StoreError(RewardscaleError, RuntimeError):
    """The sample store cannot be used (not a SQLite file, read-only, disk full); the message
    names the file and what to do."""


def explain(path: Path, e: sqlite3.Error) -> StoreError:
    """A StoreError for `e` on the store at `path`, with the way out."""
    text = str(e)
    if "not a database" in text or "malformed" in text:
        why = "it is not a readable SQLite sample store (corrupt, or another kind of file)"
    elif "readonly" in text or "read-only" in text:
        why = "it (or its folder) is read-only"
    elif "unable to open" in text:
        why = "it cannot be opened or created there"
    else:
        why = text
    return StoreError(
        f"cannot use the sample store {path}: {why} ({text}). Move it away or fix it, "
        "or give another one with --store PATH, or run without one with --no-store"
    )


def _clear_errors(method: F) -> F:
    """Turn the sqlite3 errors of a SampleStore method into a StoreError naming the file."""

    @functools.wraps(method)
    def wrapper(self: SampleStore, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            raise explain(self.path, e) from e

    return wrapper  # type: ignore[return-value]


@dataclass
class RunStats:
    """What one run did: completions generated now, served from the store, and re-generations of
    already stored keys (always 0 unless something is wrong)."""

    run: int
    generated: int = 0
    reused: int = 0
    duplicates: int = 0
    generated_tokens: int = 0  # tokens of what this run generated (samples and verdicts; not kept in `runs`)


class SampleStore:
    """SQLite store of generated completions (WAL journal, one commit per finished job).

    Thread-safe: one connection guarded by a lock. Each store instance is one *run* (a row in
    `runs`) whose counters tell how much was generated versus reused. `shared` is true when
    another process has the store open for a run too (both would generate the same samples).
    A store that cannot be used raises StoreError, naming the file and the way out.
    """

    @_clear_errors
    def __init__(self, path: str | os.PathLike, argv: Sequence[str] = ()):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder of the sample store {self.path}: {e}") from e
        if self.path.is_dir():
            raise StoreError(
                f"the sample store {self.path} is a directory; give a file with --store PATH, "
                "or run without one with --no-store"
            )
        self._lock = threading.Lock()
        self.shared = not self._take_run_lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._migrate()
        argv_text = json.dumps(redact_argv(argv))  # no --api-key value in the file
        cur = self._db.execute("INSERT INTO runs (started, argv) VALUES (?, ?)", (time.time(), argv_text))
        self._db.commit()
        self.stats = RunStats(run=int(cur.lastrowid))

    def _migrate(self) -> None:
        """Add what a store written by an older version lacks (verdict token counts, read as 0)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(verdicts)")}
        if "tokens" not in columns:
            self._db.execute("ALTER TABLE verdicts ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0")

    def _take_run_lock(self) -> bool:
        """Hold `<store>.lock` for this run (released when the process ends, even by kill -9);
        False when another process holds it. A folder where no lock file can be made: True."""
        try:
            self._lockfile = open(f"{self.path}.lock", "a")  # held for the run
        except OSError:
            return True
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    @_clear_errors
    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        """The stored completions among `keys`."""
        rows = self._rows_by_key("SELECT key, text, finish_reason, tokens FROM samples", keys)
        return {key: Completion(text=text, finish_reason=finish, tokens=tokens) for key, text, finish, tokens in rows}

    def put_many(self, model: str, phash: str, seed: int, items: Sequence[tuple[int, str, Completion]]) -> None:
        """Commit new completions (index, key, completion) in one transaction. Failed completions
        (backend errors) are not stored: they are drawn again next time."""
        self.put_jobs(model, [(phash, seed, items)])

    @_clear_errors
    def put_jobs(self, model: str, jobs: Sequence[tuple[str, int, Sequence[tuple[int, str, Completion]]]]) -> None:
        """Commit the new completions of several jobs (prompt hash, seed, items) in one transaction."""
        now = time.time()
        kept = [(phash, seed, idx, key, c) for phash, seed, items in jobs for idx, key, c in items if c.error is None]
        rows = [
            (key, model, phash, seed, idx, c.text, c.finish_reason, c.tokens, self.stats.run, now)
            for phash, seed, idx, key, c in kept
        ]
        if not rows:
            return
        with self._lock:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO samples VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            inserted = self._db.total_changes - before
            self.stats.generated += len(rows)
            self.stats.generated_tokens += sum(c.tokens for *_, c in kept)
            self.stats.duplicates += len(rows) - inserted
            self._save_stats()
            self._db.commit()

    @_clear_errors
    def get_verdicts(self, keys: Sequence[str]) -> dict[str, Completion]:
        """The stored verdict continuations among `keys`."""
        rows = self._rows_by_key("SELECT key, text, finish_reason, logprobs, tokens FROM verdicts", keys)
        return {
            key: Completion(text=text, finish_reason=finish, logprobs=_logprobs_from_json(lps), tokens=tokens)
            for key, text, finish, lps, tokens in rows
        }

    def _rows_by_key(self, select: str, keys: Sequence[str]) -> list[tuple]:
        """Rows of `select ... WHERE key IN keys`, asked 500 keys at a time (SQLite's bound on
        query parameters)."""
        out: list[tuple] = []
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                out += self._db.execute(f"{select} WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        return out

    @_clear_errors
    def put_verdict(self, model: str, key: str, vc: Completion) -> None:
        """Commit one verdict continuation (failed ones are not stored: they are tried again)."""
        if vc.error is not None:
            return
        row = (
            key,
            model,
            vc.text,
            vc.finish_reason,
            _logprobs_json(vc.logprobs),
            self.stats.run,
            time.time(),
            vc.tokens,
        )
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO verdicts (key, model, text, finish_reason, logprobs, run, created, tokens) "
                "VALUES (?,?,?,?,?,?,?,?)",
                row,
            )
            self.stats.generated_tokens += vc.tokens
            self._db.commit()

    @_clear_errors
    def count_reused(self, n: int) -> None:
        with self._lock:
            self.stats.reused += n
            self._save_stats()
            self._db.commit()

    def _save_stats(self) -> None:
        s = self.stats
        self._db.execute(
            "UPDATE runs SET generated=?, reused=?, duplicates=? WHERE id=?",
            (s.generated, s.reused, s.duplicates, s.run),
        )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def runs(self) -> list[RunStats]:
        """Every run recorded in this store, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, generated, reused, duplicates FROM runs ORDER BY id").fetchall()
        return [RunStats(*r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
            lockfile = getattr(self, "_lockfile", None)
            if lockfile is not None:
                lockfile.close()


class JobWriter:
    """Commits finished jobs on one thread, in group commits: the jobs that finish within
    `GROUP_S` of the first one waiting (at most `GROUP_JOBS`) go in one transaction, so a fast
    fleet costs a few commits a second, not one per job (each costs about 0.25 ms of CPU here).
    A job is committed at most GROUP_S after it finished, and always before it is used: `close`
    returns once everything given to it is committed (and raises the store's error if a commit
    failed)."""

    GROUP_S = 0.01
    GROUP_JOBS = 512

    def __init__(self, store: SampleStore, model: str):
        self.store, self.model = store, model
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
        self.thread.start()

    def put(self, phash: str, seed: int, items: Sequence[tuple[int, str, Completion]]) -> None:
        self.queue.put((phash, seed, items))

    def _loop(self) -> None:
        done = False
        while not done:
            jobs = [self.queue.get()]
            until = time.monotonic() + self.GROUP_S
            while jobs[-1] is not None and len(jobs) < self.GROUP_JOBS:
                try:
                    jobs.append(self.queue.get(timeout=max(0.0, until - time.monotonic())))
                except queue.Empty:
                    break
            if jobs[-1] is None:  # close(): commit what is here, then stop
                jobs.pop()
                done = True
            if jobs and self.error is None:
                try:
                    self.store.put_jobs(self.model, jobs)
                except BaseException as e:  # noqa: BLE001 - raised again by close()
                    self.error = e

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
