"""Benchmark loaders: records in each benchmark's own published schema -> `examples.Example`s.

Records come from `examples.read_records`: `.jsonl`, `.json` (a list of records) or `.parquet`
files, or with network `hf:OWNER/NAME[:SPLIT]` through `datasets`. Every schema error names the
file, the record and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..correctness import Label
from ..examples import DataError, Example, Kind, read_records
from ..types import InvalidRequest, Request

SchemaError = DataError  # the one data error (rewardscale.examples); the old name stays importable

Record = dict[str, Any]


def _field(loc: str, rec: Record, *names: str) -> Any:
    if not isinstance(rec, dict):
        raise SchemaError(f"{loc}: expected a JSON object, got {type(rec).__name__}")
    for name in names:
        if name in rec and rec[name] is not None:
            return rec[name]
    raise SchemaError(f"{loc}: missing field {' or '.join(repr(n) for n in names)}")


def _text(loc: str, value: Any, name: str) -> str:
    if isinstance(value, dict):  # RMB: {"answer": ...}
        value = value.get("answer", value.get("content"))
    if not isinstance(value, str):
        raise SchemaError(f"{loc}: field {name!r} must be a string, got {type(value).__name__}")
    return value


def _request(loc: str, query: Any, responses: list[str], rid: str) -> Request:
    try:
        return Request.make(query, responses, id=rid)
    except (InvalidRequest, KeyError, TypeError) as e:
        raise SchemaError(f"{loc}: {e}") from None


def _rid(loc: str, rec: Record, *names: str) -> str:
    for n in names:
        if rec.get(n) is not None:
            return str(rec[n])
    return loc


def _example(
    loc: str, rid: str, query: Any, responses: list[str], kind: Kind, subset: str, good: Sequence[bool] = (),
    has_error: bool | None = None, style: tuple[int, int] | None = None,
) -> Example:  # fmt: skip
    """An example from a benchmark's labels: `good` (one flag per response) or `has_error`."""
    label = Label(good=not has_error) if has_error is not None else Label.from_good(good)
    return Example(_request(loc, query, responses, rid), label, loc, rid, subset, kind, style)


def rewardbench(loc: str, rec: Record) -> Example:
    """RewardBench: prompt, chosen, rejected, subset (pairwise; chosen is response 0)."""
    prompt = _text(loc, _field(loc, rec, "prompt"), "prompt")
    chosen = _text(loc, _field(loc, rec, "chosen"), "chosen")
    rejected = _text(loc, _field(loc, rec, "rejected"), "rejected")
    subset = str(_field(loc, rec, "subset"))
    rid = _rid(loc, rec, "id")
    return _example(loc, rid, prompt, [chosen, rejected], Kind.PAIRWISE, subset, (True, False))


def rewardbench2(loc: str, rec: Record) -> Example:
    """RewardBench 2: prompt, chosen [1], rejected [3], subset (best-of-4, chosen first)."""
    prompt = _text(loc, _field(loc, rec, "prompt"), "prompt")
    chosen, rejected = _field(loc, rec, "chosen"), _field(loc, rec, "rejected")
    if not isinstance(chosen, list) or not isinstance(rejected, list) or not chosen or not rejected:
        raise SchemaError(f"{loc}: 'chosen' and 'rejected' must be non-empty lists of strings")
    responses = [_text(loc, r, "chosen") for r in chosen] + [_text(loc, r, "rejected") for r in rejected]
    good = tuple(i < len(chosen) for i in range(len(responses)))
    rid = _rid(loc, rec, "id")
    return _example(loc, rid, prompt, responses, Kind.BEST_OF_N, str(_field(loc, rec, "subset")), good)


def ppe_preference(loc: str, rec: Record) -> Example:
    """PPE human preference: prompt, response_1, response_2, winner (model_a | model_b)."""
    prompt = _text(loc, _field(loc, rec, "prompt"), "prompt")
    a = _text(loc, _field(loc, rec, "response_1", "response_a"), "response_1")
    b = _text(loc, _field(loc, rec, "response_2", "response_b"), "response_2")
    winner = _field(loc, rec, "winner")
    if winner not in ("model_a", "model_b"):
        raise SchemaError(f"{loc}: field 'winner' must be 'model_a' or 'model_b' (ties are not scored), got {winner!r}")
    rid = _rid(loc, rec, "question_id", "id")
    subset = str(rec.get("language") or rec.get("category") or "human_preference")
    return _example(loc, rid, prompt, [a, b], Kind.PAIRWISE, subset, (winner == "model_a", winner == "model_b"))


def ppe_correctness(loc: str, rec: Record) -> Example:
    """PPE correctness: prompt, response_1..response_K, scores (per-response correctness, bools)."""
    prompt = _text(loc, _field(loc, rec, "prompt"), "prompt")
    keys = sorted((k for k in rec if k.startswith("response_") and k[9:].isdigit()), key=lambda k: int(k[9:]))
    if len(keys) < 2:
        raise SchemaError(f"{loc}: expected fields response_1..response_K (K >= 2)")
    responses = [_text(loc, rec[k], k) for k in keys]
    scores = _field(loc, rec, "scores")
    if not isinstance(scores, list) or len(scores) != len(responses):
        raise SchemaError(f"{loc}: field 'scores' must list one correctness value per response ({len(responses)})")
    good = tuple(bool(s) for s in scores)
    if not any(good):
        raise SchemaError(f"{loc}: no response is correct; such items cannot be scored by best-of-K accuracy")
    rid = _rid(loc, rec, "question_id", "id")
    subset = str(rec.get("benchmark") or rec.get("source") or "correctness")
    return _example(loc, rid, prompt, responses, Kind.BEST_OF_N, subset, good)


def _rmb_query(loc: str, rec: Record) -> Any:
    conv = _field(loc, rec, "conversation_input")
    if not isinstance(conv, list):
        raise SchemaError(f"{loc}: field 'conversation_input' must be a list of {{role, content}}")
    return conv


def rmb(loc: str, rec: Record) -> Example:
    """RMB: pairwise records (conversation_input, chosen, reject) or best-of-N records
    (conversation_input, bon_best, loser_list); best-of-N is right only when the best response
    beats every loser."""
    conv = _rmb_query(loc, rec)
    subset = str(rec.get("category_path") or rec.get("subset") or "rmb")
    if "bon_best" in rec:
        losers = _field(loc, rec, "loser_list")
        if not isinstance(losers, list) or not losers:
            raise SchemaError(f"{loc}: field 'loser_list' must be a non-empty list")
        responses = [_text(loc, rec["bon_best"], "bon_best")] + [_text(loc, r, "loser_list") for r in losers]
        rid = _rid(loc, rec, "bon_uid", "id")
        good = (True,) + (False,) * len(losers)
        return _example(loc, rid, conv, responses, Kind.BEST_OF_N, "bon/" + subset, good)
    chosen = _text(loc, _field(loc, rec, "chosen"), "chosen")
    rejected = _text(loc, _field(loc, rec, "reject", "rejected"), "reject")
    rid = _rid(loc, rec, "pair_uid", "id")
    return _example(loc, rid, conv, [chosen, rejected], Kind.PAIRWISE, "pair/" + subset, (True, False))


def realmistake(loc: str, rec: Record) -> Example:
    """ReaLMistake: input, llm_response, error_label ('error' | 'no_error'), task_name."""
    query = _text(loc, _field(loc, rec, "input"), "input")
    response = _text(loc, _field(loc, rec, "llm_response"), "llm_response")
    label = _field(loc, rec, "error_label")
    if label not in ("error", "no_error"):
        raise SchemaError(f"{loc}: field 'error_label' must be 'error' or 'no_error', got {label!r}")
    rid = _rid(loc, rec, "id")
    subset = str(rec.get("task_name") or "realmistake")
    return _example(loc, rid, query, [response], Kind.BINARY, subset, has_error=label == "error")


RM_BENCH_STYLES = ("concise", "detailed", "detailed markdown")


def rm_bench_level(chosen_style: int, rejected_style: int) -> str:
    """RM-Bench's difficulty of a (chosen style, rejected style) cell: 'normal' on the diagonal
    (same style), 'hard' when the chosen response is plainer than the rejected one (upper-right
    triangle), 'easy' when it is fancier (lower-left triangle)."""
    if chosen_style == rejected_style:
        return "normal"
    return "hard" if chosen_style < rejected_style else "easy"


def _styled(loc: str, rec: Record, name: str) -> list[str]:
    value = _field(loc, rec, name)
    if not isinstance(value, list) or len(value) != len(RM_BENCH_STYLES):
        raise SchemaError(
            f"{loc}: field {name!r} must be a list of {len(RM_BENCH_STYLES)} strings ({', '.join(RM_BENCH_STYLES)})"
        )
    return [_text(loc, v, f"{name}[{i}]") for i, v in enumerate(value)]


def rm_bench(loc: str, rec: Record) -> list[Example]:
    """RM-Bench (THU-KEG/RM-Bench, `data/total_dataset.json`; hf:THU-KEG/RM-Bench): id, prompt,
    chosen [3], rejected [3] (styles concise, detailed, detailed markdown), domain (chat, math,
    code, safety-refuse, safety-response). One record gives the 9 pairs of its 3x3 style matrix,
    chosen style i against rejected style j (chosen shown first in the data, response 0); subset
    `domain/level` with level easy, normal or hard (`rm_bench_level`)."""
    prompt = _text(loc, _field(loc, rec, "prompt"), "prompt")
    chosen, rejected = _styled(loc, rec, "chosen"), _styled(loc, rec, "rejected")
    domain = _field(loc, rec, "domain")
    if not isinstance(domain, str) or not domain:
        raise SchemaError(f"{loc}: field 'domain' must be a non-empty string (chat, math, code, safety-...)")
    rid = _rid(loc, rec, "id")
    out = []
    for i, c in enumerate(chosen):
        for j, r in enumerate(rejected):
            eid = f"{rid}/c{i}r{j}"
            level = rm_bench_level(i, j)
            out.append(
                _example(loc, eid, prompt, [c, r], Kind.PAIRWISE, f"{domain}/{level}", (True, False), style=(i, j))
            )
    return out


# JudgeBench's categories (its leaderboard columns), by the prefix of a record's `source`.
JUDGEBENCH_CATEGORIES = (
    ("mmlu-pro", "knowledge"),
    ("livebench-reasoning", "reasoning"),
    ("livebench-math", "math"),
    ("livecodebench", "coding"),
)


def judgebench_category(source: str) -> str:
    """knowledge | reasoning | math | coding from a JudgeBench `source` (e.g. 'mmlu-pro-law');
    a source outside JudgeBench's four (custom pairs in its schema) is its own category."""
    for prefix, category in JUDGEBENCH_CATEGORIES:
        if source.startswith(prefix):
            return category
    return source


def judgebench(loc: str, rec: Record) -> Example:
    """JudgeBench (ScalerLab/JudgeBench, `data/dataset=judgebench,response_model=*.jsonl`;
    hf:ScalerLab/JudgeBench:gpt or :claude): pair_id, original_id, source, question,
    response_model, response_A, response_B, label ('A>B' | 'B>A'). Scored in both orders
    (Kind.BOTH_ORDERS); subset = the category of `source`."""
    question = _text(loc, _field(loc, rec, "question"), "question")
    a = _text(loc, _field(loc, rec, "response_A"), "response_A")
    b = _text(loc, _field(loc, rec, "response_B"), "response_B")
    label = _field(loc, rec, "label")
    if label not in ("A>B", "B>A"):
        raise SchemaError(f"{loc}: field 'label' must be 'A>B' or 'B>A', got {label!r}")
    source = _text(loc, _field(loc, rec, "source"), "source")
    rid = _rid(loc, rec, "pair_id", "id")
    good = (label == "A>B", label == "B>A")
    return _example(loc, rid, question, [a, b], Kind.BOTH_ORDERS, judgebench_category(source), good)


def generic(loc: str, rec: Record) -> Example:
    """Generic JSONL: query|messages with one of
    responses + best (index) | chosen + rejected | response + has_error (bool)."""
    query = _field(loc, rec, "messages", "query", "prompt")
    rid = _rid(loc, rec, "id")
    subset = str(rec.get("subset") or "default")
    if "response" in rec:
        label = _field(loc, rec, "has_error")
        if not isinstance(label, bool):
            raise SchemaError(f"{loc}: field 'has_error' must be true or false")
        resp = _text(loc, rec["response"], "response")
        return _example(loc, rid, query, [resp], Kind.BINARY, subset, has_error=label)
    if "chosen" in rec:
        pair = [_text(loc, rec["chosen"], "chosen"), _text(loc, _field(loc, rec, "rejected"), "rejected")]
        return _example(loc, rid, query, pair, Kind.PAIRWISE, subset, (True, False))
    responses = _field(loc, rec, "responses")
    if not isinstance(responses, list):
        raise SchemaError(f"{loc}: field 'responses' must be a list of strings")
    best = _field(loc, rec, "best")
    best = best if isinstance(best, list) else [best]
    if not all(isinstance(b, int) and 0 <= b < len(responses) for b in best):
        raise SchemaError(f"{loc}: field 'best' must be an index (or list of indices) into 'responses'")
    good = tuple(i in best for i in range(len(responses)))
    kind = Kind.PAIRWISE if len(responses) == 2 else Kind.BEST_OF_N
    return _example(loc, rid, query, [_text(loc, r, "responses") for r in responses], kind, subset, good)


LOADERS: dict[str, Callable[[str, Record], Example | list[Example]]] = {
    "rewardbench": rewardbench,
    "rewardbench2": rewardbench2,
    "ppe-preference": ppe_preference,
    "ppe-correctness": ppe_correctness,
    "rmb": rmb,
    "realmistake": realmistake,
    "rm-bench": rm_bench,
    "judgebench": judgebench,
    "generic": generic,
}


def load(name: str, source: str | Path, limit: int | None = None) -> list[Example]:
    """Examples of benchmark `name` from `source` (file path or `hf:NAME[:SPLIT]`); `limit` counts
    records (an RM-Bench record gives 9 examples)."""
    if name not in LOADERS:
        raise SchemaError(f"unknown benchmark {name!r}; choose one of: {', '.join(LOADERS)}")
    parse = LOADERS[name]
    out: list[Example] = []
    for loc, rec in _limited(read_records(str(source)), limit):
        try:
            parsed = parse(loc, rec)
        except ValueError as e:
            raise SchemaError(str(e) if str(e).startswith(str(loc)) else f"{loc}: {e}") from None
        out.extend(parsed if isinstance(parsed, list) else [parsed])
    if not out:
        raise SchemaError(f"{source}: no records")
    return out


def _limited(items: Iterable, limit: int | None) -> Iterator:
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        yield item
