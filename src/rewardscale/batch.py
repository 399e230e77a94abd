"""Batch scoring I/O: read requests from JSONL (errors name file, line and field) and write
results atomically (a temporary file renamed into place: never a half-written output)."""

from __future__ import annotations

import codecs
import glob
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RewardscaleError
from .types import InvalidRequest, Request


class InputError(RewardscaleError, ValueError):
    """A malformed input line: the message names the file, the line and the field."""


@dataclass(frozen=True)
class LineError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def read_requests(path: str | os.PathLike, skip_invalid: bool = False) -> tuple[list[Request], list[LineError]]:
    """Requests from a JSONL file, one `{"query"|"messages", "responses", "id"?}` object a line.

    Blank lines are ignored. A request without an `id` gets `line-N`, so every output line can be
    matched to its input. A malformed line (bad JSON, bytes that are not UTF-8, JSON nested too
    deeply, a bad field) raises InputError, or with `skip_invalid` is returned in the error list and
    skipped.
    """
    requests: list[Request] = []
    errors: list[LineError] = []
    with open(path, "rb") as f:
        for no, raw in enumerate(f, start=1):
            if no == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            try:
                data = parse_line(raw)
                req = Request.from_dict(data)
                if req.id is None:
                    req = Request(messages=req.messages, responses=req.responses, id=f"line-{no}")
                requests.append(req)
            except InvalidRequest as e:
                err = LineError(str(path), no, str(e))
                if not skip_invalid:
                    raise InputError(f"{err} (use --skip-invalid to skip such lines)") from None
                errors.append(err)
    return requests, errors


def parse_line(raw: bytes) -> object:
    """One JSONL line's value; InvalidRequest saying what is wrong with it."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidRequest(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise InvalidRequest(f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise InvalidRequest("not valid JSON here: nested too deeply") from None


def _write_atomic(path: str | os.PathLike, chunks: Iterable[str]) -> None:
    """Write `chunks` to a temporary file beside `path`, fsync it, then rename it into place; the
    file gets the usual permissions (0666 less the umask), not mkstemp's private 0600."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(target: Path) -> None:
    """Delete the temporary files of earlier writes of `target` whose process is gone (killed while
    writing); a live writer's file (its pid is in the name) is left alone."""
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = tmp.name[len(target.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            tmp.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Atomic write of JSON lines (no half-written file on a crash)."""
    _write_atomic(path, (json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Atomic write of a text file."""
    _write_atomic(path, (text,))
