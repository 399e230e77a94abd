"""Secrets never leave the process: command lines are recorded (the sample store's `runs.argv`)
with the values of secret options replaced, and any known secret value is masked wherever it
appears."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

SECRET_OPTIONS = ("--api-key", "--auth-token")
SECRET_ENV = ("OPENAI_API_KEY", "REWARDSCALE_API_TOKEN")
MASK = "***"


def redact_argv(argv: Sequence[str], secrets: Iterable[str] = ()) -> list[str]:
    """`argv` with the value of every secret option (`--api-key X`, `--api-key=X`) masked, and
    any of `secrets` (plus the secret environment variables' values) masked where it appears."""
    known = [s for s in [*secrets, *(os.environ.get(v) for v in SECRET_ENV)] if s]
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name in SECRET_OPTIONS:
            if eq:
                out.append(f"{name}={MASK}")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(mask(arg, known))
    return out


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (non-empty) replaced by the mask."""
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text
