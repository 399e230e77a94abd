"""Code-checked answers: before it judges, the judge writes a short Python program, from the
conversation alone, that computes the right answer; the program runs isolated, and the output
most of its programs agree on is shown to every sample as a checked fact.

Why: a small judge cannot multiply 17 by 23 in its head, so its critique of "391" vs "401" is a
coin toss (README *SPCT training*: the drafts work answers out wrongly). The same model writes
`print(17 * 23)` without fault. Computing, not recalling, is what a program adds, so a program
that only prints a constant (`print("Tokyo")`) is not used.

Safety: the program is written by the judge from the conversation, never from a response (it is
drawn before any response is shown), so a response cannot steer it. It is still model-written
code, and the conversation is user text: it runs only if every import is in `ALLOWED_IMPORTS` and
it names no builtin that reaches files, processes or the interpreter (`screen`), in a separate
`python -I -S` process with an empty environment, a temporary working directory, no stdin, limits
on CPU time, memory and file size, and a wall-clock timeout (`run_program`).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import plan as planning
from .backends.base import Completion, GenerationRequest
from .template import SYSTEM, context_section, defang
from .types import Judgment, Message, Request

INSTRUCTION = (
    "Below is a conversation between a user and an AI assistant. You will judge candidate "
    "responses to the user's last message, but you do not see them yet. If the message has a right "
    "answer that a short program can compute (arithmetic, counting, dates, unit conversions, string "
    "operations, looking something up in a table given in the message, the output of code), write a "
    "Python program that computes it and prints it, in one ```python block, and nothing else. Use "
    "only the standard library. If no program can compute the answer, write only: No program."
)

ALLOWED_IMPORTS = frozenset(
    {
        "math", "cmath", "decimal", "fractions", "statistics", "random", "datetime", "calendar", "time",
        "re", "string", "textwrap", "unicodedata", "itertools", "functools", "collections",
        "heapq", "bisect", "json", "csv",
    }
)  # fmt: skip
# Builtins that reach files, processes, the interpreter or other objects' internals (refused as
# names and as attributes; `io` and `operator` are left out of the imports for the same reason:
# `io.open`, `operator.attrgetter("__...")`).
FORBIDDEN_NAMES = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "input", "breakpoint", "globals", "locals", "vars",
        "getattr", "setattr", "delattr", "help", "exit", "quit", "memoryview", "__builtins__", "__loader__",
        "__spec__",
    }
)  # fmt: skip
TIMEOUT_S = 5.0  # wall clock; CPU is limited to 2 s inside
MAX_OUTPUT_CHARS = 200  # a longer output is a text the program wrote, not an answer it computed
MAX_PROGRAM_CHARS = 1200

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class CodeCheck:
    """A request's checked answer: the program shown, what it printed, and how many of the
    programs that ran printed the same (`agree` of `ran`, of `drawn`)."""

    program: str
    output: str
    agree: int
    ran: int
    drawn: int


def render_program(request: Request) -> list[Message]:
    """The chat messages that ask for a program from the conversation alone (no response in them)."""
    parts = [INSTRUCTION, context_section(request.messages)]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def program_requests(requests: Sequence[Request], programs: int, seed: int) -> list[GenerationRequest]:
    """Per request one prompt for all its programs (n = `programs`, one prefill), seeded from
    the request's content; none when `programs` is 0."""
    if programs < 1:
        return []
    return [
        GenerationRequest(
            messages=tuple(render_program(r)),
            n=programs,
            seed=planning.derive_seed(planning.request_seed(r, seed), "code-check"),
        )
        for r in requests
    ]


def extract_program(text: str) -> str | None:
    """The first fenced Python block of a draft (None when it has none or it is empty)."""
    m = _FENCE.search(text)
    if not m:
        return None
    program = m.group(1).strip()
    return program or None


def screen(program: str) -> str | None:
    """Why `program` is not run (None: it may run): it does not parse, is too long, imports a
    module outside `ALLOWED_IMPORTS`, names a forbidden builtin or a `_` attribute, prints
    nothing, or computes nothing (`_computes`: `x = "Tokyo"; print(x)` recalls an answer)."""
    if len(program) > MAX_PROGRAM_CHARS:
        return f"longer than {MAX_PROGRAM_CHARS} characters"
    try:
        tree = ast.parse(program)
    except SyntaxError as e:
        return f"does not parse: {e.msg}"
    prints: list[ast.Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            bad = [n for n in names if n.split(".")[0] not in ALLOWED_IMPORTS]
            if bad or (isinstance(node, ast.ImportFrom) and node.level):
                return f"imports {', '.join(bad) or 'a relative module'}"
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            return f"uses {node.id}"
        elif isinstance(node, ast.Attribute) and (node.attr.startswith("_") or node.attr in FORBIDDEN_NAMES):
            return f"reaches the attribute {node.attr}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "__" in node.value:
            return "names a dunder in a string (reflection)"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            prints.append(node)
    if not prints:
        return "prints nothing"
    if not _computes(tree):
        return "prints constants: it computes nothing"
    return None


_COMPUTING = (ast.BinOp, ast.BoolOp, ast.Compare, ast.Subscript, ast.comprehension, ast.For, ast.While, ast.Lambda)


def _computes(tree: ast.Module) -> bool:
    """The program does some work: an operator, a comparison, an index, a loop or comprehension,
    or a call of anything but `print` (a program whose values are all literals only recalls)."""
    for node in ast.walk(tree):
        if isinstance(node, _COMPUTING):
            return True
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "print"):
            return True
    return False


def _limits() -> None:  # pragma: no cover - runs in the child process
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (2, 2))
    resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_program(program: str, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """Run a program isolated (`python -I -S`, empty environment, a temporary directory, no stdin,
    CPU / memory / file-size limits on POSIX, a timeout): (ran without error, its stdout or the
    reason it failed). Also what `train.checkers` runs a response's code and its tests with."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", program],
                cwd=tmp,
                env={"PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"},
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                preexec_fn=_limits if os.name == "posix" else None,
            )
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout:g} s"
    if done.returncode < 0:
        return False, f"killed by signal {-done.returncode} (CPU or memory limit)"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return False, last[:200]
    out = done.stdout.strip()
    if not out:
        return False, "printed nothing"
    return True, out


def check(drafts: Sequence[Completion]) -> CodeCheck | None:
    """A request's checked answer from its program drafts: each screened and run (a program
    drafted twice runs once; an output over `MAX_OUTPUT_CHARS` is not an answer); the output
    most of them print (the first drafted on a tie), with the shortest program that printed it;
    None when no program ran."""
    runs: dict[str, tuple[bool, str]] = {}
    outputs: list[tuple[str, str]] = []
    for draft in drafts:
        program = None if draft.error else extract_program(draft.text)
        if program is None or screen(program) is not None:
            continue
        if program not in runs:
            runs[program] = run_program(program)
        ok, out = runs[program]
        if ok and len(out) <= MAX_OUTPUT_CHARS:
            outputs.append((_normal(out), program))
    if not outputs:
        return None
    counts = Counter(out for out, _ in outputs)
    best = max(counts, key=lambda o: (counts[o], -[x for x, _ in outputs].index(o)))
    program = min((p for o, p in outputs if o == best), key=len)
    return CodeCheck(program=program, output=best, agree=counts[best], ran=len(outputs), drawn=len(drafts))


def check_all(drafts: Sequence[Sequence[Completion]]) -> list[CodeCheck | None]:
    """`check` for each request's drafts, requests side by side (each program is a process of
    its own, so a batch uses every core)."""
    if len(drafts) < 2:
        return [check(d) for d in drafts]
    with ThreadPoolExecutor(max_workers=min(len(drafts), os.cpu_count() or 1)) as pool:
        return list(pool.map(check, drafts))


def _normal(output: str) -> str:
    """An output as votes count it: trailing spaces gone, a float that is a whole number as an int."""
    out = "\n".join(line.rstrip() for line in output.strip().splitlines())
    return re.sub(r"(?<![\d.])(\d+)\.0(?![\d.])", r"\1", out)


def render_check(program: str, output: str) -> str:
    """The prompt section that shows a checked answer (defanged: the program and its output came
    from the conversation, which is user text)."""
    return (
        "#### Checked by Code ####\n"
        "Before seeing any response, you wrote this program to compute the answer:\n"
        f"```python\n{defang(program)}\n```\n"
        f"It printed:\n```\n{defang(output)}\n```\n"
        "Trust this output over any answer worked out in your head: a response whose answer "
        "disagrees with it is wrong on that point."
    )


def section_of(j: Judgment) -> str | None:
    """The `#### Checked by Code ####` section a sample's prompt held (None: it had none), rebuilt
    from what the judgment records, so a training record shows the prompt the sample saw."""
    if j.checked is None or j.check_program is None:
        return None
    return render_check(j.check_program, j.checked)
