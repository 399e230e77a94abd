"""Rejection fine-tuning (RFT), SPCT's first stage: sample the GRM, keep what the rule calls correct.

For each labelled example, draw `n_samples` GRM trajectories (any backend, through `GRM.sample`,
so the sample store, position-balanced shuffles and retries apply). Then, per example:

- every sample correct                -> dropped as too easy (`too_easy`)
- some correct                        -> the correct ones are kept
- none correct, `hinted` and n >= 2   -> `n_samples` more draws whose prompt names the best
                                         response; the correct ones are kept (`kept_hinted`)
- otherwise                           -> dropped (`no_correct`)

A kept sample becomes a prompt/completion chat record whose prompt is the UNHINTED scoring
prompt with the sample's own response order, so the model learns to produce the trajectory
without the hint. `train_sft` fine-tunes on the records with TRL's SFTTrainer (full or LoRA).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..codecheck import section_of
from ..config import JudgeConfig
from ..correctness import GOOD_THRESHOLD, is_correct
from ..examples import Example, jsonl_rows
from ..grm import GRM
from ..rulefacts import after_responses
from ..template import render
from ..types import Judgment


@dataclass
class RFTReport:
    """Counts by reason, for examples and for samples."""

    examples: int = 0
    kept_examples: int = 0  # at least one unhinted sample kept
    kept_hinted_examples: int = 0  # kept only thanks to hinted sampling
    dropped_too_easy: int = 0  # all unhinted samples correct
    dropped_no_correct: int = 0  # no correct sample, even hinted (or no hint possible)
    samples: int = 0  # unhinted + hinted samples drawn
    kept_samples: int = 0
    kept_hinted_samples: int = 0
    wrong_samples: int = 0  # parsed, but the scores break the rule
    failed_samples: dict[str, int] = field(default_factory=dict)  # unparseable, by status

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        failed = sum(self.failed_samples.values())
        return (
            f"examples {self.examples}: kept {self.kept_examples} (+{self.kept_hinted_examples} via hints), "
            f"dropped {self.dropped_too_easy} too easy, {self.dropped_no_correct} with no correct sample; "
            f"samples {self.samples}: kept {self.kept_samples} ({self.kept_hinted_samples} hinted), "
            f"wrong {self.wrong_samples}, unparseable {failed} {dict(self.failed_samples) if failed else ''}".rstrip()
        )


def sample_record(example: Example, j: Judgment, correct: bool, hinted: bool) -> dict[str, Any]:
    """One GRM sample with its label and verdict (the audit trail; also meta RM training data)."""
    return {
        "source": example.source,
        "request": example.request.to_dict(),
        "label": example.label.to_dict(),
        "hinted": hinted,
        "correct": correct,
        **j.to_dict(),
    }


def sft_record(example: Example, j: Judgment, hinted: bool, config: JudgeConfig | None = None) -> dict[str, Any]:
    """A kept sample as a TRL conversational prompt/completion record: the unhinted prompt the
    sample saw, with its code-checked answer and the rule sections `config` adds."""
    permutation = j.spec.permutation
    after = after_responses(example.request, permutation, config, j.checked) if config else ()
    return {
        "prompt": render(example.request, permutation, checked=section_of(j), after=after),
        "completion": [{"role": "assistant", "content": j.text}],
        "source": example.source,
        "hinted": hinted,
    }


def build_rft(
    grm: GRM,
    examples: Sequence[Example],
    n_samples: int = 3,
    hinted: bool = True,
    threshold: int = GOOD_THRESHOLD,
    batch: int = 64,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int], None] | None = None,
    on_more: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], RFTReport]:
    """Sample, judge against the labels, keep/drop; return (SFT records, report).

    `on_sample` receives every drawn sample's record (write them out to keep the audit trail);
    `on_more(n)` is told when a hinted round adds n samples to the planned total.
    Requests go to the backend `batch` examples at a time.
    """
    report = RFTReport(examples=len(examples))
    failed: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []

    def judge(ex: Example, samples: list[Judgment], was_hinted: bool) -> list[Judgment]:
        good = []
        for j in samples:
            ok = j.valid and is_correct(j.scores, ex.label, threshold)
            report.samples += 1
            if ok:
                good.append(j)
            elif j.valid:
                report.wrong_samples += 1
            else:
                failed[j.status.value] += 1
            if on_sample:
                on_sample(sample_record(ex, j, ok, was_hinted))
        return good

    for start in range(0, len(examples), batch):
        chunk = list(examples[start : start + batch])
        drawn = grm.sample([ex.request for ex in chunk], n_samples, progress)
        retry: list[Example] = []
        for ex, samples in zip(chunk, drawn):
            good = judge(ex, samples, False)
            if len(good) == len(samples):
                report.dropped_too_easy += 1
            elif good:
                report.kept_examples += 1
                report.kept_samples += len(good)
                kept.extend(sft_record(ex, j, False, grm.config) for j in good)
            elif hinted and ex.label.sole_best is not None:
                retry.append(ex)
            else:
                report.dropped_no_correct += 1
        if retry:
            if on_more:
                on_more(len(retry) * n_samples)
            hints = [ex.label.sole_best for ex in retry]
            drawn = grm.sample([ex.request for ex in retry], n_samples, progress, hints=hints)
            for ex, samples in zip(retry, drawn):
                good = judge(ex, samples, True)
                if good:
                    report.kept_hinted_examples += 1
                    report.kept_samples += len(good)
                    report.kept_hinted_samples += len(good)
                    kept.extend(sft_record(ex, j, True, grm.config) for j in good)
                else:
                    report.dropped_no_correct += 1
    report.failed_samples = dict(sorted(failed.items()))
    return kept, report


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; a malformed line raises DataError (a ValueError) naming
    file:line."""
    return [obj for _, obj in jsonl_rows(path)]
