"""Each response's answer compared with the code-checked output, stated to the judge.

Why: shown `print(17 * 23)` -> 391, the 1.5B judge still mis-reads which response says 391 (it
copies "391" as the other response's answer). Comparing two numbers is a rule's job, not a
small model's: as math-verify does for math rewards, a rule reads each response's final answer
and the prompt states whether it equals the checked output; the judge still scores everything
else. The statement is made by us, after the responses, from the responses' own text, so a
response cannot forge it except by giving the checked answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from .template import defang
from .types import Request

SECTION = "#### Answers Compared with the Checked Output ####"
MAX_TEXT_CHARS = 80  # a longer text output is compared by no rule here
MIN_TEXT_CHARS = 3  # a shorter one ("a", "no") is found inside too many unrelated texts

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?!\d)")
_WHOLE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_MARKER = re.compile(r"(?i)final answer|the answer is|answer\s*:|#+\s*answer\b")
_FRAC = re.compile(r"\\d?frac\{(-?\d+)\}\{(\d+)\}")
FLOAT_DIGITS = 6  # a checked output with this many decimals is a float: compared within 1e-6


def _value(number: str) -> Fraction | None:
    """A number as written ("1,234", "-3.5", "7/12") as an exact fraction (None when it is not one)."""
    try:
        return Fraction(number.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _equal(checked: Fraction, stated: str, float_like: bool = False) -> bool:
    """True when a stated number is the checked one, or the checked one rounded to the stated
    number's decimals (0.30000000000000004 printed, "0.3" stated); a `float_like` output (many
    decimals) also within a relative 1e-6 ("7/12" stated, 0.5833333333333334 printed)."""
    value = _value(stated)
    if value is None:
        return False
    if value == checked:
        return True
    if float_like and abs(value - checked) <= Fraction(1, 10**6) * max(1, abs(checked)):
        return True
    decimals = len(stated.split(".")[1]) if "." in stated and "/" not in stated else 0
    return decimals > 0 and round(checked, decimals) == value


def final_number(text: str) -> str | None:
    """The number a response gives as its final answer: in its last `\\boxed{}`, else the first
    number after its last answer marker ("the answer is", "Answer:", "# Answer"); None when it
    marks none (a bare last number, or one after "=", is often not the answer: "391 is 17 times
    23", "check: 391 / 23 = 17"). LaTeX fractions read as a/b."""
    text = _FRAC.sub(r"\1/\2", text)
    boxed = _BOXED.findall(text)
    if boxed:
        found = _NUMBER.findall(boxed[-1])
        return found[0] if found else None
    markers = list(_MARKER.finditer(text))
    if markers:
        found = _NUMBER.search(text, markers[-1].end())
        return found.group(0) if found else None
    return None


def compare(output: str, response: str) -> str | None:
    """One line on how a response's answer stands against the checked `output`, or None when no
    rule here can compare them (multi-line, long or very short text, True/False)."""
    output = output.strip()
    if "\n" in output:
        return None
    if _WHOLE_NUMBER.fullmatch(output):
        checked = _value(output)
        if checked is None:
            return None
        float_like = "." in output and len(output.split(".")[1]) >= FLOAT_DIGITS
        final = final_number(response)
        if final is not None:
            verdict = "equals" if _equal(checked, final, float_like) else "differs from"
            return f"its final answer {final} {verdict} the checked output {output}"
        numbers = _NUMBER.findall(_FRAC.sub(r"\1/\2", response))
        stated = any(_equal(checked, n, float_like) for n in numbers)
        return f"it {'states' if stated else 'does not state'} the checked output {output}"
    if not MIN_TEXT_CHARS <= len(output) <= MAX_TEXT_CHARS or output in ("True", "False", "None"):
        return None
    found = re.search(rf"(?<!\w){re.escape(output)}(?!\w)", response) is not None
    return f"it {'contains' if found else 'does not contain'} the checked output {output!r}"


def render_comparison(output: str, shown: Sequence[str]) -> str | None:
    """The section that states, per shown response, how its answer compares with the checked
    output (None when no response could be compared)."""
    lines = [(pos, compare(output, r)) for pos, r in enumerate(shown, start=1)]
    if all(line is None for _, line in lines):
        return None
    body = "\n".join(f"- Response {pos}: {line}." for pos, line in lines if line is not None)
    return (
        f"{SECTION}\n"
        "A rule (not you) compared each response's answer with the checked output:\n"
        f"{defang(body)}\n"
        "A response whose answer differs from the checked output is wrong on that point."
    )


def comparison_for(request: Request, permutation: Sequence[int], output: str | None) -> str | None:
    """`render_comparison` for one sample's prompt: the request's responses in shown order
    (None without a checked output)."""
    if output is None:
        return None
    return render_comparison(output, [request.responses[i] for i in permutation])
