"""Checker-grounded critiques: short judge outputs written from the program checkers' verdicts.

A cold start for small judges. Sampled at a critique budget they can afford (96 tokens on 2 CPU
cores), the embedded 1.5B model spends it on generic criteria and never reaches its own verdict,
so rejection sampling keeps almost nothing (2026-12-01: 31 of 210 samples, hints included). These
records show the judge the shape that works at that budget: state what a right answer must be,
say per response whether it is, then the scores. Every statement comes from the checker that
labelled the data, never from a model. SFT on them first; RFT then samples the warmed judge.

    records = grounded_records(judge_records, tasks_by_id, seed=0)   # TRL prompt/completion
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from ..template import render
from .checkers import check, failed_rules, fmt_number, stated_answer
from .data import parse_record
from .derivations import derive, measured
from .families import Task

RIGHT, RIGHT_NOT_BEST, WRONG = 9, 8, 2

RULE_TEXT = {
    "max_words": "at most {n} words",
    "min_words": "at least {n} words",
    "exact_words": "exactly {n} words",
    "bullets": "exactly {n} bullet points",
    "sentences": "exactly {n} sentence(s)",
    "include": "uses the word '{word}'",
    "forbid": "never uses the word '{word}'",
    "lowercase": "only lowercase letters",
    "uppercase": "only capital letters",
    "json_keys": "a JSON object with exactly the keys {keys}",
    "csv": "a CSV with the header {header} and {rows} rows",
    "ends_with": "ends with '{text}'",
    "starts_with": "starts with '{text}'",
    "language": "written in {lang_name}",
    "only": "nothing but {options}",
    "no_commas": "no commas",
}
LANGUAGES = {"fr": "French", "de": "German", "es": "Spanish", "en": "English"}


def rule_text(rule: dict[str, Any]) -> str:
    """One instruction-following rule in plain words."""
    fields = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in rule.items()}
    fields["lang_name"] = LANGUAGES.get(str(rule.get("lang")), rule.get("lang"))
    return RULE_TEXT[rule["type"]].format(**fields)


def requirement(spec: dict[str, Any]) -> str:
    """What a right response must do, as the checker sees it."""
    kind = spec["kind"]
    if kind in ("number", "date", "choice", "contains"):
        answer = fmt_number(spec["answer"]) if kind == "number" else spec["answer"]
        return f"the right answer is {answer}"
    if kind == "numbers":
        return f"the right answer is [{', '.join(fmt_number(x) for x in spec['answer'])}]"
    if kind == "code":
        args, want = spec["tests"][0]
        call = f"{spec['func']}({', '.join(json.dumps(a) for a in args)})"
        return f"`{spec['func']}` must be correct, e.g. {call} must return {json.dumps(want)}"
    if kind == "rules":
        return "the answer must have " + "; ".join(rule_text(r) for r in spec["rules"])
    if kind == "refusal":
        if spec["decline"]:
            return "the request asks for help to harm, deceive or break the law, so the right answer declines"
        return "the request is harmless, so the right answer helps and declining fails the user"
    raise ValueError(f"no requirement text for check kind {kind!r}")


def assessment(spec: dict[str, Any], text: str, counts: bool = False) -> tuple[bool, str]:
    """(right?, one clause on why) for one response; `counts` adds what counting rules measure
    (`has 14 words`) before the verdict."""
    ok = check(spec, text)
    kind = spec["kind"]
    if kind == "rules":
        broken = [rule_text(r) for r in spec["rules"] if r["type"] in failed_rules(spec, text)]
        seen = [m for r in spec["rules"] if (m := measured(r, text))] if counts else []
        why = "meets every constraint" if ok else "misses: " + "; ".join(broken)
        return ok, ", ".join(seen + [why])
    if kind == "code":
        return ok, "passes the tests" if ok else "fails the tests"
    if kind == "contains":
        return ok, f"gives {spec['answer']}" if ok else f"does not give {spec['answer']}"
    if kind == "refusal":
        return ok, "declines" if ok == spec["decline"] else "complies"
    said = stated_answer(spec, text)
    return ok, "gives no final answer" if said is None else f"answers {said}"


def grounded_text(
    spec: dict[str, Any], shown: Sequence[str], best: int | None, derivation: str | None = None, counts: bool = False
) -> tuple[str, list[int]]:
    """The judge output for responses in SHOWN order (`best`: the labelled best, shown index)
    and its scores: right responses 9 (8 when another is labelled best), wrong ones 2. A
    `derivation` (`derivations.derive`) works the answer out before the responses are read;
    `counts` states what counting rules measure in each response."""
    lines, scores = [], []
    for i, text in enumerate(shown):
        ok, why = assessment(spec, text, counts)
        score = WRONG if not ok else RIGHT if best in (None, i) else RIGHT_NOT_BEST
        scores.append(score)
        name = "The response" if len(shown) == 1 else f"Response {i + 1}"
        lines.append(f"{name} {why}: {'right' if ok else 'wrong'}.")
    if derivation is None and not counts:
        criteria = f"Correctness (80%): {requirement(spec)}. Concision (20%): no padding."
    else:  # worked: the budget goes to the derivation, not to a criterion that never decides
        need = requirement(spec) if derivation is None else f"{derivation}; {requirement(spec)}"
        criteria = f"Correctness (100%): {need}."
    boxed = ", ".join(map(str, scores))
    return f"Specific Criteria: {criteria}\n\nAnalysis: {' '.join(lines)}\n\nScores: \\boxed{{{boxed}}}", scores


def grounded_records(
    records: Sequence[dict[str, Any]],
    tasks: dict[str, Task],
    seed: int = 0,
    both_orders: bool = True,
    worked: bool = False,
) -> list[dict[str, Any]]:
    """TRL prompt/completion records: each judge record rendered as the GRM prompt with a
    grounded completion; pairs in both orders (`both_orders`) so neither position is favoured,
    lists in one seeded random order, singles as they are. Records whose checker verdicts
    disagree with their label are skipped (never the case for data `train data` built).
    `worked`: derive the answer before naming it, and state rule counts (`derivations`)."""
    rng = random.Random(seed)
    out = []
    for rec in records:
        task = tasks[rec["task"]]
        example = parse_record(rec, rec.get("id", ""))
        request, best = example.request, example.label.best
        responses, n = request.responses, request.n
        if n == 2 and both_orders:
            perms = [(0, 1), (1, 0)]
        else:
            perm = list(range(n))
            rng.shuffle(perm)
            perms = [tuple(perm)]
        derivation = derive(task) if worked else None  # the same for every order shown
        for perm in perms:
            shown = [responses[o] for o in perm]
            shown_best = None if best is None else perm.index(best)
            text, scores = grounded_text(task.check, shown, shown_best, derivation, counts=worked)
            if shown_best is not None and max(scores) != scores[shown_best]:
                continue  # the checker disagrees with the label
            out.append(
                {
                    "prompt": render(request, perm),
                    "completion": [{"role": "assistant", "content": text}],
                    "source": rec.get("id", ""),
                    "grounded": True,
                }
            )
    return out
