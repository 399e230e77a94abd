"""Meta RM training data: one row per GRM sample, with the text the meta RM reads and a label.

Sources (JSONL, one object a line; several files can be combined):

- `rewardscale bench` output `OUT/samples.jsonl`: one row per example with `benchmark`, `id`,
  `good` (which responses are right to pick) or `has_error` (single-response binary label),
  `request` (query messages + responses) and `samples` (every GRM sample, `Judgment.to_dict()`).
- `rewardscale train rft` output `OUT/rft_samples.jsonl`: one row per sample with `request`,
  `label` (`{"best"}`, `{"rating"}` or `{"good"}`) and the sample's fields; hinted samples are
  skipped (their prompt named the answer; scoring never does).

Label (the paper's rule, `rewardscale.correctness`): a sample is correct (1) when its scores give
a truly best response a STRICTLY higher score than every other response (a tie for first place is
wrong); with several acceptable responses (`good` marks more than one, e.g. PPE correctness), the
single strict leader must be one of them. One response: the score equals the `rating`, or lies on
the right side of the good/bad threshold (`has_error`, binary `good`).

Samples that did not parse are left out (not labelled 0): they abstain from every vote, MetaRM@k
ranks them last whatever their q, and their text (often cut off mid-critique) would only teach
the meta RM to spot truncation.

The text (`format_sample`) puts the scores line first, so truncation to the encoder's token limit
never drops it, then the query, the responses in ORIGINAL order with their index, the principles
and the critique. The judge saw the responses shuffled and calls them by shown position;
"Response N" mentions in the principles and critique are renumbered to the original index so they
agree with the responses and scores shown. Each part has a character budget (shared out so that
short parts leave room for long ones); a part over its budget keeps its head and tail.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..correctness import InvalidLabel, Label, is_correct
from ..examples import DataError, Example, jsonl_objects
from ..types import InvalidRequest, Judgment, Request

FORMAT_VERSION = 1
DEFAULT_BUDGET_CHARS = 1600  # ~384 wordpiece tokens of English; the tokenizer cuts the rest
# share of the budget for each part (query, all responses, principles, critique)
WEIGHTS = {"query": 0.15, "responses": 0.35, "principles": 0.15, "critique": 0.35}
MENTION = re.compile(r"\b([Rr]esponse)(\s*#?\s*)(\d+)\b")


MetaRMDataError = DataError  # the one data error (rewardscale.examples); the old name stays importable


@dataclass(frozen=True)
class SampleRow:
    """One GRM sample as meta RM data: `group` identifies its example (splits never cut one)."""

    group: str
    text: str
    label: int
    benchmark: str = ""
    example_id: str = ""
    sample: int = 0  # the sample's index among its example's samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "text": self.text,
            "label": self.label,
            "benchmark": self.benchmark,
            "id": self.example_id,
            "sample": self.sample,
        }


def sample_correct(
    scores: Sequence[int] | None, good: Sequence[bool] | None = None, label: Label | None = None
) -> bool:
    """Whether one sample's scores (ORIGINAL order; None = did not parse) are correct, by the one
    rule `rewardscale.correctness.is_correct`: with `label`, or with `good` (one flag per
    response, True where it is right to pick: exactly one response must have the top score and
    it must be good; ties for first are wrong)."""
    if scores is None:
        return False
    if label is None:
        if good is None or len(good) != len(scores):
            raise ValueError(f"'good' must have one entry per response ({len(scores)})")
        label = Label.from_good(good)
        if not label.picks:
            return False
    return is_correct(scores, label)


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters: the head and the tail of a longer text, joined by ' [...] '."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit < 16:
        return text[:limit]
    keep = limit - 7
    head = keep * 2 // 3
    return text[:head].rstrip() + " [...] " + text[len(text) - (keep - head) :].lstrip()


def _budgets(lengths: Sequence[int], weights: Sequence[float], budget: int) -> list[int]:
    """Character caps per part: each gets its weighted share; what short parts leave is shared out
    again among the parts that need more (water filling)."""
    caps = [0] * len(lengths)
    todo = [i for i, n in enumerate(lengths) if n > 0]
    left = budget
    while todo and left > 0:
        total_w = sum(weights[i] for i in todo) or 1.0
        share = {i: int(left * weights[i] / total_w) for i in todo}
        fits = [i for i in todo if lengths[i] - caps[i] <= share[i]]
        if not fits:
            for i in todo:
                caps[i] += share[i]
            break
        for i in fits:
            left -= lengths[i] - caps[i]
            caps[i] = lengths[i]
        todo = [i for i in todo if i not in fits]
    return caps


def renumber(text: str, permutation: Sequence[int]) -> str:
    """'Response p' (shown position p, 1-based) -> 'Response i' (original index i, 1-based)."""

    def sub(m: re.Match) -> str:
        p = int(m.group(3))
        if 1 <= p <= len(permutation):
            return f"{m.group(1)}{m.group(2)}{permutation[p - 1] + 1}"
        return m.group(0)

    return MENTION.sub(sub, text)


def format_sample(request: Request, judgment: Judgment, budget_chars: int = DEFAULT_BUDGET_CHARS) -> str:
    """The one text the meta RM reads for (request, sample), at training and at scoring time."""
    n = request.n
    scores = judgment.scores
    score_line = "scores: " + (
        " ".join(f"[{i + 1}]={s}" for i, s in enumerate(scores)) if scores is not None else "none (did not parse)"
    )
    if scores is not None and n > 1:
        top = max(scores)
        leaders = [i + 1 for i, s in enumerate(scores) if s == top]
        score_line += f" | top: {'tie ' if len(leaders) > 1 else ''}{','.join(map(str, leaders))}"
    perm = judgment.spec.permutation
    principles = renumber(judgment.principles, perm) if len(perm) == n else judgment.principles
    critique = renumber(judgment.critique, perm) if len(perm) == n else judgment.critique
    if not principles and not critique and scores is None:
        critique = judgment.text
    query = request.query
    responses = [r.strip() for r in request.responses]
    resp_len = sum(len(r) for r in responses)
    lengths = [len(query), resp_len, len(principles), len(critique)]
    q_cap, r_cap, p_cap, c_cap = _budgets(lengths, list(WEIGHTS.values()), max(budget_chars - len(score_line), 64))
    per_resp = _budgets([len(r) for r in responses], [1.0] * n, r_cap)
    parts = [score_line, f"query: {_cut(query, q_cap)}"]
    parts += [f"[{i + 1}] {_cut(r, c)}" for i, (r, c) in enumerate(zip(responses, per_resp))]
    parts += [f"principles: {_cut(principles, p_cap)}", f"critique: {_cut(critique, c_cap)}"]
    return "\n".join(parts)


def _group(benchmark: str, example_id: str | None, request: Request) -> str:
    if example_id:
        return f"{benchmark}:{example_id}"
    digest = hashlib.sha256(json.dumps(request.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    return f"{benchmark}:{digest}"


@dataclass
class RowStats:
    """What `read_rows` found: samples read, kept (labelled, parsed), skipped and why."""

    examples: int = 0
    samples: int = 0
    kept: int = 0
    positive: int = 0
    unparsed: int = 0
    hinted: int = 0
    unlabelled: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def summary(self) -> str:
        return (
            f"{self.kept} samples from {self.examples} examples ({self.positive} correct, "
            f"{self.kept - self.positive} wrong); left out: {self.unparsed} unparsed, {self.hinted} hinted, "
            f"{self.unlabelled} without a label"
        )


def _row_label(obj: dict[str, Any], n: int, where: str) -> Label | None:
    """The label of an example row: RFT's `label` dict, or bench's `good` flags (n >= 2) or
    `has_error` / `rating` (n = 1); None when it has no usable label."""
    try:
        if isinstance(obj.get("label"), dict):
            return Label.from_dict(obj["label"]).check(n)
        if n == 1:
            if obj.get("has_error") is not None:
                return Label(good=not obj["has_error"])
            if obj.get("rating") is not None:
                return Label(rating=int(obj["rating"])).check(1)
            return None
    except (InvalidLabel, TypeError, ValueError) as e:
        raise DataError(f"{where}: bad label: {e}") from None
    good = obj.get("good")
    if not good:
        return None
    if not isinstance(good, list) or len(good) != n:
        raise DataError(f"{where}: 'good' must be a list of {n} booleans (one per response)")
    return Label.from_good(good) if any(good) else None


def _request(obj: dict[str, Any], where: str) -> Request:
    if "request" not in obj:
        raise DataError(
            f"{where}: no 'request' (query + responses), so the meta RM has no text to read; samples.jsonl "
            "written before rewardscale had meta RM support lacks it: rewrite it from the sample store, "
            "without generating, with the same `rewardscale bench ...` command plus --stored-only"
        )
    try:
        return Request.from_dict(obj["request"])
    except InvalidRequest as e:
        raise DataError(f"{where}: bad 'request': {e}") from None


@dataclass
class LabelledExample:
    """One labelled `Example` and its GRM samples in sample order (from any supported file)."""

    group: str
    benchmark: str
    example: Example
    judgments: list[Judgment]
    sample_ids: list[int] = field(default_factory=list)  # each judgment's sample index

    @property
    def request(self) -> Request:
        return self.example.request

    @property
    def label(self) -> Label:
        return self.example.label

    @property
    def good(self) -> tuple[bool, ...] | None:
        """One flag per response (right to pick) for a ranking label; None for one response."""
        return self.example.good or None

    def rows(self, budget_chars: int = DEFAULT_BUDGET_CHARS, stats: RowStats | None = None) -> list[SampleRow]:
        """Rows for the samples that parsed (the others left out, counted in `stats`)."""
        stats = stats if stats is not None else RowStats()
        ids = self.sample_ids or list(range(len(self.judgments)))
        out = []
        for pos, j in enumerate(self.judgments):
            stats.samples += 1
            if not j.valid:
                stats.unparsed += 1
                continue
            y = int(is_correct(j.scores, self.label))
            text = format_sample(self.request, j, budget_chars)
            out.append(SampleRow(self.group, text, y, self.benchmark, self.example.id, ids[pos]))
            stats.kept += 1
            stats.positive += y
        return out


def read_examples(paths: str | Path | Iterable[str | Path], stats: RowStats | None = None) -> list[LabelledExample]:
    """The labelled examples of bench `samples.jsonl` and RFT `rft_samples.jsonl` files, with their
    samples (RFT rows of one example are gathered; hinted ones are left out). Unlabelled examples
    are skipped (counted in `stats`); malformed rows raise MetaRMDataError naming file and line."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    stats = stats if stats is not None else RowStats()
    examples: dict[str, LabelledExample] = {}
    for path in map(Path, paths):
        for where, obj in jsonl_objects(path):
            request = _request(obj, where)
            bench = str(obj.get("benchmark", path.stem))
            if "samples" in obj:  # bench: one row per example
                sample_dicts = obj["samples"]
                group = _group(bench, obj.get("id"), request)
                ids = list(range(len(sample_dicts)))
            else:  # rft trail: one row per sample
                sample_dicts = [obj]
                group = _group(bench, obj.get("source") or obj.get("id"), request)
                ids = [int(obj.get("index", 0))]
                if obj.get("hinted"):
                    stats.samples += 1
                    stats.hinted += 1
                    continue
            try:
                judgments = [Judgment.from_dict(s) for s in sample_dicts]
            except (KeyError, ValueError, TypeError) as e:
                raise DataError(f"{where}: a sample is not a rewardscale judgment ({e!r})") from None
            label = _row_label(obj, request.n, where)
            if label is None:
                stats.samples += len(judgments)
                stats.unlabelled += len(judgments)
                continue
            ex = examples.get(group)
            if ex is None:
                example = Example(request, label, where, str(obj.get("id", "")), str(obj.get("subset", "")))
                ex = examples[group] = LabelledExample(group, bench, example, [])
                stats.examples += 1
            ex.judgments += judgments
            ex.sample_ids += ids
    return list(examples.values())


def read_rows(
    paths: str | Path | Iterable[str | Path], budget_chars: int = DEFAULT_BUDGET_CHARS
) -> tuple[list[SampleRow], RowStats]:
    """All labelled, parsed samples of bench `samples.jsonl` and RFT `rft_samples.jsonl` files.

    Raises DataError (naming file and line) for malformed rows, and when nothing usable is
    left: no labelled example, or no sample that parsed."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    stats = RowStats()
    rows = [r for ex in read_examples(paths, stats) for r in ex.rows(budget_chars, stats)]
    if not rows:
        raise no_rows_error(paths, stats)
    return rows, stats


def no_rows_error(paths: Sequence[Path], stats: RowStats) -> DataError:
    names = ", ".join(str(p) for p in paths)
    return DataError(
        f"{names}: no labelled sample that parsed ({stats.samples} samples: {stats.unlabelled} without a "
        f"label, {stats.unparsed} unparsed, {stats.hinted} hinted); the meta RM needs GRM samples of "
        "labelled examples (rewardscale bench samples.jsonl or rewardscale train rft rft_samples.jsonl)"
    )
