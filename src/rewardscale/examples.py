"""Labelled examples for benchmarks, training and the meta RM: one `Example`, one record reader.

An `Example` is a `Request` plus a `correctness.Label` (best index / indices right to pick /
rating / binary), where it came from (`source`), and for benchmarks its id, subset and how it is
scored (`Kind`). Benchmark loaders (`bench/loaders.py`), training data (`train/data.py`) and meta
RM data (`metarm/data.py`) all build this one type and read their files with `read_records`.

Sources: a local `.jsonl` (one JSON value a line), `.json` (a list of records, or an object with
one list such as `{"data": [...]}`) or `.parquet` (needs pandas + pyarrow) file, or
`hf:NAME[:SPLIT]`, a dataset loaded by name through `datasets` (imported lazily; needs the hub or
its cache). Each record comes with its location: `FILE:LINE` (JSONL, 1-based), `FILE[i]` (JSON and
parquet, 0-based) or `hf:NAME[:SPLIT][i]`; every error names it (and the field, where one is to
blame) in a `DataError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from .correctness import InvalidLabel, Label
from .errors import RewardscaleError
from .types import Request

HF_PREFIX = "hf:"
SUFFIXES = (".jsonl", ".json", ".parquet")


class DataError(RewardscaleError, ValueError):
    """Data that cannot become examples: the message names the file, the line or record, and the field."""


class Kind(str, Enum):
    """How a benchmark scores an example (derived from the label when not given).

    PAIRWISE: two responses, the label's `best` marks the preferred one; right when it gets the
        top reward.
    BEST_OF_N: n responses, `best` marks the acceptable picks (one for RewardBench 2 and RMB
        best-of-N, every correct response for PPE correctness); right when the top reward goes to
        a good one. Ties count 1/#tied (expected) or by a seeded random choice.
    BOTH_ORDERS: two responses judged in both shown orders (JudgeBench): the samples that showed
        each order vote among themselves, each order's vote is a decision (+1, -1 or 0 for a tie
        or no sample), and the pair goes to the response the two decisions add up to; 0 is a tie.
    BINARY: one response with a binary label (`good`, i.e. not `has_error`); scored over the
        whole set by ROC-AUC of the reward as a detector of "no error".
    RATING: one response with a 1..10 rating (training data; no benchmark scores these).
    """

    PAIRWISE = "pairwise"
    BEST_OF_N = "best_of_n"
    BOTH_ORDERS = "both_orders"
    BINARY = "binary"
    RATING = "rating"

    @classmethod
    def of(cls, label: Label, n: int) -> Kind:
        if label.good is not None:
            return cls.BINARY
        if label.rating is not None:
            return cls.RATING
        return cls.PAIRWISE if n == 2 else cls.BEST_OF_N


_RANKED = (Kind.PAIRWISE, Kind.BEST_OF_N, Kind.BOTH_ORDERS)


@dataclass(frozen=True)
class Example:
    """One labelled request. `label` fits the request (checked here: InvalidLabel otherwise);
    `source` says where it came from (`file:line`, `file[i]`, `hf:name[i]`); `id` and `subset` name
    it in a benchmark; `kind` defaults to `Kind.of(label, n)`; `style` is RM-Bench's (chosen style,
    rejected style) of the pair, 0 concise, 1 detailed, 2 detailed with markdown (None elsewhere)."""

    request: Request
    label: Label
    source: str = ""
    id: str = ""
    subset: str = ""
    kind: Kind | None = None
    style: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        n = self.request.n
        self.label.check(n)
        kind = self.kind or Kind.of(self.label, n)
        object.__setattr__(self, "kind", kind)
        if kind is Kind.BINARY and self.label.good is None:
            raise InvalidLabel("a binary example has one response and a binary label (good / has_error)")
        if kind is Kind.RATING and self.label.rating is None:
            raise InvalidLabel("a rating example has one response and a 'rating' label")
        if kind in _RANKED and self.label.best is None:
            raise InvalidLabel(f"a {kind.value} example needs the responses right to pick ('best')")
        if kind is Kind.BOTH_ORDERS and n != 2:
            raise InvalidLabel("a both-orders example has exactly two responses")

    @property
    def good(self) -> tuple[bool, ...]:
        """One flag per response, True where it is right to pick (empty for single-response labels)."""
        picks = self.label.picks
        return tuple(i in picks for i in range(self.request.n)) if picks else ()

    @property
    def has_error(self) -> bool | None:
        """The binary label as benchmarks name it (None unless the label is binary)."""
        return None if self.label.good is None else not self.label.good

    def to_dict(self) -> dict[str, Any]:
        return {**self.request.to_dict(), "label": self.label.to_dict(), "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls(Request.from_dict(d), Label.from_dict(d["label"]), d.get("source", ""))


def read_records(source: str | Path) -> Iterator[tuple[str, Any]]:
    """(location, record) of every record of a local file or of `hf:NAME[:SPLIT]` (see the module
    docstring); the records are parsed JSON values, not checked further."""
    spec = str(source)
    if spec.startswith(HF_PREFIX):
        yield from _hub_records(spec)
        return
    path = Path(spec)
    if not path.is_file():
        raise DataError(f"no such data file: {path}")
    if path.suffix == ".jsonl":
        for no, record in jsonl_rows(path):
            yield f"{path}:{no}", record
    elif path.suffix == ".json":
        for i, record in enumerate(_json_list(path)):
            yield f"{path}[{i}]", record
    elif path.suffix == ".parquet":
        for i, record in enumerate(_parquet_rows(path)):
            yield f"{path}[{i}]", record
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use {', '.join(SUFFIXES)} or hf:NAME[:SPLIT]")


def jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line of a JSONL file; an unreadable file or a
    malformed line raises DataError naming file:line."""
    try:
        fh = open(path, encoding="utf-8")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    with fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield no, json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{no}: invalid JSON ({e.msg})") from None


def jsonl_objects(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) of a JSONL file whose every line must be a JSON object."""
    for no, record in jsonl_rows(path):
        if not isinstance(record, dict):
            raise DataError(f"{path}:{no}: expected a JSON object, got {type(record).__name__}")
        yield f"{path}:{no}", record


def _json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno} ({e.msg})") from None
    if isinstance(data, dict):  # {"data": [...]} or a similar single-list wrapper
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}})")
    return data


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pandas as pd
    except ImportError as e:
        raise DataError("reading parquet needs pandas and pyarrow: pip install pandas pyarrow") from e
    for rec in pd.read_parquet(path).to_dict("records"):
        yield {k: v.tolist() if hasattr(v, "tolist") else v for k, v in rec.items()}  # numpy -> lists


def _hub_records(spec: str) -> Iterator[tuple[str, Any]]:
    try:
        import datasets
    except ImportError as e:
        raise DataError(f"loading {spec!r} by dataset name needs 'datasets': pip install datasets") from e
    name, _, split = spec[len(HF_PREFIX) :].partition(":")
    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as e:  # datasets raises many types (network, missing config...)
        raise DataError(f"could not load dataset {spec!r}: {e}") from e
    for i, rec in enumerate(ds):
        yield f"{spec}[{i}]", dict(rec)
