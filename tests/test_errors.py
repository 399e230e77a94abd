"""Every exception rewardscale defines derives from RewardscaleError and keeps its builtin base."""

from __future__ import annotations

import pytest

from rewardscale import RewardscaleError
from rewardscale.backends.base import BackendError, MissingExtra
from rewardscale.backends.openai_http import BadReply
from rewardscale.batch import InputError
from rewardscale.bench.loaders import SchemaError
from rewardscale.bench.runner import NotStored
from rewardscale.config import ConfigError
from rewardscale.correctness import InvalidLabel
from rewardscale.integrations.client import RewardServerError
from rewardscale.metarm.data import MetaRMDataError
from rewardscale.metarm.model import MissingMetaRMExtra, NotAMetaRM
from rewardscale.models import ModelUnavailable
from rewardscale.serve.batcher import Expired, QueueFull
from rewardscale.store import StoreError
from rewardscale.train.checkers import CheckError
from rewardscale.train.data import DataError
from rewardscale.train.deps import MissingTrainExtra
from rewardscale.train.lora_gguf import AdapterError
from rewardscale.types import InvalidRequest


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (BackendError, RuntimeError),
        (MissingExtra, ImportError),
        (MissingMetaRMExtra, ImportError),
        (MissingTrainExtra, ImportError),
        (BadReply, ValueError),
        (InputError, ValueError),
        (SchemaError, ValueError),
        (NotStored, RuntimeError),
        (InvalidLabel, ValueError),
        (RewardServerError, RuntimeError),
        (MetaRMDataError, ValueError),
        (NotAMetaRM, ValueError),
        (QueueFull, RuntimeError),
        (Expired, TimeoutError),
        (StoreError, RuntimeError),
        (DataError, ValueError),
        (InvalidRequest, ValueError),
        (ConfigError, ValueError),
        (CheckError, ValueError),
        (AdapterError, ValueError),
        (ModelUnavailable, RuntimeError),
    ],
)
def test_project_errors_share_one_base_and_keep_their_own(cls, builtin):
    assert issubclass(cls, RewardscaleError) and issubclass(cls, builtin)


def test_missing_extra_still_names_the_extra():
    e = MissingExtra("torch", "transformers")
    assert isinstance(e, RewardscaleError) and "rewardscale[transformers]" in str(e)


def test_no_class_in_the_package_derives_from_a_builtin_exception_alone():
    """A scan of the source: a class with a builtin exception base also has RewardscaleError."""
    import ast
    import builtins
    from pathlib import Path

    import rewardscale

    root = Path(rewardscale.__file__).parent
    builtin_errors = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    lonely = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name != "RewardscaleError":
                bases = {ast.unparse(b) for b in node.bases}
                if bases & builtin_errors and "RewardscaleError" not in bases:
                    lonely.append(f"{path.relative_to(root)}:{node.name}")
    assert lonely == []
