"""Labelled training records -> `examples.Example`s (a Request plus the Label that says what is right).

Accepted record shapes (JSON objects; the query is `prompt`, `query` or `messages`, a string or a
list of `{"role", "content"}`):

- pair:    `{"prompt", "chosen", "rejected"}` (chosen/rejected: strings, or TRL-style message
           lists whose last message is the answer; with no prompt field, the prompt is the
           shared conversation before it)
- list:    `{"prompt", "responses": [...], "best": i}`
- rating:  `{"prompt", "response": "...", "rating": 1..10}`
- binary:  `{"prompt", "response": "...", "label": true/false}` (also 0/1, "good"/"bad")

Sources: anything `examples.read_records` reads: a local `.jsonl`, `.json` (a list of records, or
`{"data": [...]}`) or `.parquet` file, or `hf:NAME[:SPLIT]` (a `datasets` name, loaded lazily;
needs the hub or a local cache; a bare `NAME[:SPLIT]` that is not a file is read the same, as
before). Errors name the file, the line (record index for JSON) and the field.

`training_prompt` renders an example with the scoring template, responses shuffled with a
permutation drawn from a recorded seed, so training sees exactly what scoring shows;
`training_prompts` does it for a data set, the orders position-balanced across it, with the rule
sections (form and decline facts) a judge config adds when scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import JudgeConfig
from ..correctness import InvalidLabel, Label
from ..examples import HF_PREFIX, SUFFIXES, DataError, Example, read_records
from ..plan import balanced_permutations, plan, request_seed
from ..rulefacts import after_responses
from ..template import render
from ..types import InvalidRequest, Message, Request

_QUERY_FIELDS = ("messages", "prompt", "query")
_BINARY = {True: True, False: False, "good": True, "bad": False, "true": True, "false": False}  # 1/0 == True/False


def _answer(value: Any, field: str) -> tuple[list[Message] | None, str]:
    """A chosen/rejected value -> (conversation before the answer or None, answer text)."""
    if isinstance(value, str):
        return None, value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        last = value[-1]
        if not isinstance(last.get("content"), str):
            raise DataError(f"field {field!r}: the last message has no string 'content'")
        return list(value[:-1]) or None, last["content"]
    raise DataError(f"field {field!r} must be a string or a list of {{role, content}} messages")


def _query(record: dict[str, Any], fallback: list[Message] | None) -> str | list[Message]:
    for name in _QUERY_FIELDS:
        if name in record:
            value = record[name]
            if isinstance(value, (str, list)):
                return value
            raise DataError(f"field {name!r} must be a string or a list of {{role, content}} messages")
    if fallback:
        return fallback
    raise DataError("missing the query: one of the fields 'prompt', 'query', 'messages'")


def parse_record(record: Any, source: str = "") -> Example:
    """One JSON record (any accepted shape) -> Example. Raises DataError naming the field."""
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}")
    try:
        if "chosen" in record or "rejected" in record:
            for name in ("chosen", "rejected"):
                if name not in record:
                    raise DataError(f"a pair needs both 'chosen' and 'rejected'; missing {name!r}")
            context, chosen = _answer(record["chosen"], "chosen")
            _, rejected = _answer(record["rejected"], "rejected")
            request = Request.make(_query(record, context), [chosen, rejected], id=_id(record))
            return Example(request, Label(best=0).check(2), source)
        if "responses" in record:
            responses = record["responses"]
            if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
                raise DataError("field 'responses' must be a list of strings")
            request = Request.make(_query(record, None), responses, id=_id(record))
            if request.n >= 2:
                if not isinstance(record.get("best"), int) or isinstance(record.get("best"), bool):
                    raise DataError("field 'best' (the index of the best response, an integer) is missing or not int")
                return Example(request, Label(best=record["best"]).check(request.n), source)
            return Example(request, _single_label(record), source)
        if "response" in record:
            if not isinstance(record["response"], str):
                raise DataError("field 'response' must be a string")
            request = Request.make(_query(record, None), [record["response"]], id=_id(record))
            return Example(request, _single_label(record), source)
    except (InvalidRequest, InvalidLabel) as e:
        raise DataError(str(e)) from e
    raise DataError(
        "unknown record shape: expected 'chosen'/'rejected', 'responses' + 'best', or 'response' + 'rating'/'label'"
    )


def _single_label(record: dict[str, Any]) -> Label:
    if "rating" in record:
        r = record["rating"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or r != int(r):
            raise DataError(f"field 'rating' must be an integer 1..10, got {r!r}")
        return Label(rating=int(r)).check(1)
    if "label" in record:
        v = record["label"]
        key = v.lower() if isinstance(v, str) else v
        if key not in _BINARY or isinstance(key, float):
            raise DataError(f"field 'label' must be true/false, 1/0 or 'good'/'bad', got {v!r}")
        return Label(good=_BINARY[key]).check(1)
    raise DataError("a single response needs a 'rating' (1..10) or a binary 'label'")


def _id(record: dict[str, Any]) -> str | None:
    rid = record.get("id")
    return None if rid is None else str(rid)


def load_examples(source: str | Path, limit: int | None = None) -> list[Example]:
    """Examples from a local .jsonl/.json/.parquet file or `hf:NAME[:SPLIT]` (a bare dataset name
    that is not a local file is read as `hf:NAME`)."""
    spec = str(source)
    if not spec.startswith(HF_PREFIX) and not Path(spec).exists() and not spec.endswith(SUFFIXES):
        spec = HF_PREFIX + spec
    examples = []
    for where, record in read_records(spec):
        try:
            examples.append(parse_record(record, where))
        except DataError as e:
            raise DataError(f"{where}: {e}") from e
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        raise DataError(f"{source}: no records")
    return examples


def permutation_for(request: Request, seed: int) -> tuple[int, ...]:
    """A seeded order of the responses for one training prompt (recorded with the example): the
    sampling plan's single sample for it, so one request always gets the same order."""
    return plan(request.n, 1, seed=request_seed(request, seed))[0].permutation


def training_prompt(example: Example, seed: int) -> tuple[list[Message], tuple[int, ...]]:
    """The scoring template's chat messages for `example`, responses shuffled; and the permutation."""
    permutation = permutation_for(example.request, seed)
    return render(example.request, permutation), permutation


def training_prompts(
    examples: Sequence[Example], seed: int, config: JudgeConfig | None = None
) -> list[tuple[list[Message], tuple[int, ...]]]:
    """`training_prompt` for a data set whose examples are each shown once: the orders are
    position-balanced across the examples (`plan.balanced_permutations`), not drawn one by one.
    With `config`, each prompt carries the rule sections scoring adds (`JudgeConfig.form_facts`,
    `decline_facts`), so a judge trained on them sees at training what it sees at scoring."""
    if config is not None and (config.code_check or config.compare_answers):
        raise ValueError(
            "training prompts carry rule facts only: a code check runs the judge's own programs at scoring time"
        )
    orders = balanced_permutations([e.request.n for e in examples], seed)
    return [
        (render(e.request, order, after=after_responses(e.request, order, config, None) if config else ()), order)
        for e, order in zip(examples, orders)
    ]
