"""Build the judge's training and dev data: verifiable tasks, responses from real models, graded by
the checkers, paired up. Nothing from a public benchmark goes in.

1. `make_split_tasks`: tasks of every family (`families`), train and dev drawn from different
   seeds, no prompt in both; code tasks are split by function, so dev code is unseen code.
2. `sample_responses`: each model answers each task at several temperatures (llama.cpp, or any
   backend), appended to a JSONL file as it goes; a rerun skips what is there (resume).
3. `build_records`: every response graded by its task's checker; the program's reference answer
   and fluent near misses (a right response with one thing broken) added; then preference pairs
   (right vs wrong), best-of-n lists (one right among wrong ones) and single responses with a
   good/bad label, in `train.data` record shapes, each carrying its family and the origin of its
   responses.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.base import Backend, GenerationRequest
from ..batch import write_jsonl_atomic
from ..types import Sampling
from .families import Task, make_tasks, near_misses
from .rft import read_jsonl

DEV_CODE_FUNCS = frozenset({"factorial", "count_words"})  # dev-only code tasks: unseen functions
# what the ANSWERING model is told (not part of the task the judge sees): short answers keep
# judge prompts short, and a model that rambles past the token limit gives no usable answer
ANSWER_SYSTEM = "You are a helpful assistant. Answer concisely: give the result with at most a short explanation."


def make_split_tasks(
    train_per_family: int, dev_per_family: int, seed: int = 0, families: Sequence[str] | None = None
) -> tuple[list[Task], list[Task]]:
    """(train, dev) tasks of `families` (None: all): different seeds, disjoint prompts, dev code
    tasks on held-out functions."""
    chosen = list(families) if families else None
    train = [
        t
        for t in make_tasks(train_per_family, seed=2 * seed + 1, families=chosen)
        if not (t.family == "code" and t.meta["func"] in DEV_CODE_FUNCS)
    ]
    dev = [
        t
        for t in make_tasks(dev_per_family, seed=2 * seed + 2, families=chosen, exclude={t.prompt for t in train})
        if not (t.family == "code" and t.meta["func"] not in DEV_CODE_FUNCS)
    ]
    return train, dev


def sample_responses(
    backend: Backend,
    model_name: str,
    tasks: Sequence[Task],
    temperatures: Sequence[float],
    n: int,
    out: Path,
    max_tokens: int = 192,
    seed: int = 0,
    chunk: int = 32,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Answer every task `n` times per temperature; append to `out` (JSONL); skip what `out` has.

    Returns the number of responses generated now. Written chunk by chunk, so a killed run loses
    at most one chunk and resumes from the file.
    """
    done = {(r["task"], r["model"], r["temperature"]) for r in read_jsonl(out)} if out.exists() else set()
    todo = [(t, temp) for temp in temperatures for t in tasks if (t.id, model_name, temp) not in done]
    made = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        by_temp: dict[float, list[Task]] = {}
        for t, temp in part:
            by_temp.setdefault(temp, []).append(t)
        rows = []
        for temp, group in by_temp.items():
            reqs = [
                GenerationRequest(
                    ({"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": t.prompt}),
                    n=n,
                    seed=_seed(seed, t.id, temp),
                )
                for t in group
            ]
            outs = backend.generate(reqs, Sampling(temperature=temp, top_p=0.95, max_tokens=max_tokens), progress)
            for t, comps in zip(group, outs):
                for i, c in enumerate(comps):
                    if c.error or not c.text.strip():
                        continue
                    rows.append(
                        {
                            "task": t.id,
                            "model": model_name,
                            "temperature": temp,
                            "index": i,
                            "text": c.text.strip(),
                            "finish_reason": c.finish_reason,
                        }
                    )
        with open(out, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        made += len(rows)
    return made


def _seed(seed: int, task_id: str, temp: float) -> int:
    return random.Random(f"{seed}:{task_id}:{temp}").randrange(2**31)


@dataclass(frozen=True)
class Graded:
    text: str
    right: bool
    origin: str  # "model:<name>@<temp>", "reference", "near_miss"


def grade(tasks: Sequence[Task], responses: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, list[Graded]]:
    """Per task id: its distinct responses, graded; plus the reference and near misses of right ones."""
    rng = random.Random(seed)
    by_id = {t.id: t for t in tasks}
    graded: dict[str, list[Graded]] = {t.id: [] for t in tasks}
    seen: dict[str, set[str]] = {t.id: set() for t in tasks}

    def add(task: Task, text: str, origin: str) -> None:
        if text in seen[task.id] or len(text) > 2500:
            return
        seen[task.id].add(text)
        graded[task.id].append(Graded(text, task.is_right(text), origin))

    for r in responses:
        task = by_id.get(r["task"])
        if task is not None and r.get("finish_reason") != "length":
            add(task, r["text"], f"model:{r['model']}@{r['temperature']}")
    for task in tasks:
        if task.reference is not None:
            add(task, task.reference, "reference")
        rights = [g.text for g in graded[task.id] if g.right]
        for good in rng.sample(rights, min(2, len(rights))):
            for miss in near_misses(task, good, rng):
                add(task, miss, "near_miss")
    return graded


def build_records(
    tasks: Sequence[Task],
    graded: dict[str, list[Graded]],
    split: str,
    seed: int = 0,
    lists: bool = True,
    singles: bool = True,
) -> list[dict[str, Any]]:
    """Labelled records for one split: per task up to two pairs (one with a near miss when there is
    one), one best-of-3/4 list and one single response (alternately right and wrong)."""
    rng = random.Random(f"records:{split}:{seed}")
    records: list[dict[str, Any]] = []
    for k, task in enumerate(tasks):
        rights = [g for g in graded.get(task.id, []) if g.right]
        wrongs = [g for g in graded.get(task.id, []) if not g.right]
        base = {"family": task.family, "task": task.id, "split": split, "prompt": task.prompt}
        if rights and wrongs:
            misses = [g for g in wrongs if g.origin == "near_miss"]
            natural = [g for g in wrongs if g.origin != "near_miss"]
            picks = []
            if natural:
                picks.append(rng.choice(natural))
            if misses:
                picks.append(rng.choice(misses))
            for i, bad in enumerate(picks):
                good = rng.choice(rights)
                records.append(
                    {
                        **base,
                        "id": f"{task.id}-pair{i}",
                        "chosen": good.text,
                        "rejected": bad.text,
                        "origins": [good.origin, bad.origin],
                    }
                )
            if lists and len(wrongs) >= 2:
                good = rng.choice(rights)
                bads = rng.sample(wrongs, min(len(wrongs), rng.choice([2, 3])))
                items = [good, *bads]
                rng.shuffle(items)
                records.append(
                    {
                        **base,
                        "id": f"{task.id}-list",
                        "responses": [g.text for g in items],
                        "best": items.index(good),
                        "origins": [g.origin for g in items],
                    }
                )
        pool = rights if (k % 2 == 0 and rights) or not wrongs else wrongs
        if singles and pool:
            one = rng.choice(pool)
            records.append(
                {**base, "id": f"{task.id}-single", "response": one.text, "label": one.right, "origins": [one.origin]}
            )
    return records


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts by family and shape, for the data card."""
    out: dict[str, Any] = {"records": len(records), "by_family": {}, "by_shape": {}}
    for r in records:
        shape = "pair" if "chosen" in r else "list" if "responses" in r else "single"
        out["by_family"][r["family"]] = out["by_family"].get(r["family"], 0) + 1
        out["by_shape"][shape] = out["by_shape"].get(shape, 0) + 1
    out["near_miss_pairs"] = sum("chosen" in r and r["origins"][1] == "near_miss" for r in records)
    return out


def build_judge_data(
    out: Path,
    backends: Sequence[tuple[str, Backend, Sequence[float], int]],
    train_per_family: int = 24,
    dev_per_family: int = 8,
    max_tokens: int = 160,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    families: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The whole build into `out/`: tasks, model responses (resumable), train.jsonl, dev.jsonl and
    data_card.json. `backends` are (model name, backend, temperatures, answers per temperature);
    `families` the task families to build (None: all)."""
    train, dev = make_split_tasks(train_per_family, dev_per_family, seed, families)
    tasks = [*train, *dev]
    write_jsonl_atomic(out / "tasks.jsonl", [{**t.to_dict(), "split": "train" if t in train else "dev"} for t in tasks])
    responses_path = out / "responses.jsonl"
    for name, backend, temps, n in backends:
        sample_responses(backend, name, tasks, temps, n, responses_path, max_tokens, seed, progress=progress)
    responses = read_jsonl(responses_path)
    graded = grade(tasks, responses, seed)
    card: dict[str, Any] = {"seed": seed, "models": [b[0] for b in backends], "max_tokens": max_tokens}
    if families:
        card["families"] = list(families)
    for split, part in (("train", train), ("dev", dev)):
        records = build_records(part, graded, split, seed)
        write_jsonl_atomic(out / f"{split}.jsonl", records)
        card[split] = {"tasks": len(part), **summarize(records)}
    right = sum(g.right for gs in graded.values() for g in gs if g.origin.startswith("model:"))
    total = sum(1 for gs in graded.values() for g in gs if g.origin.startswith("model:"))
    card["model_responses"] = {"distinct": total, "right": right}
    (out / "data_card.json").write_text(json.dumps(card, indent=2))
    return card
