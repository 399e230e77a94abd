"""Every exception rewardscale defines derives from RewardscaleError and keeps its builtin base."""

from __future__ import annotations

import pytest

from rewardscale import RewardscaleError
from rewardscale.backends.base import BackendError, MissingExtra
from rewardscale.backends.openai_http import BadReply
from rewardscale.batch import InputError
from rewardscale.bench.loaders import SchemaError
from rewardscale.bench.runner import NotStored
from rewardscale.correctness import InvalidLabel
from rewardscale.integrations.client import RewardServerError
from rewardscale.metarm.data import MetaRMDataError
from rewardscale.metarm.model import MissingMetaRMExtra, NotAMetaRM
from rewardscale.serve.batcher import Expired, QueueFull
from rewardscale.store import StoreError
from rewardscale.train.data import DataError
from rewardscale.train.deps import MissingTrainExtra
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
    ],
)
def test_project_errors_share_one_base_and_keep_their_own(cls, builtin):
    assert issubclass(cls, RewardscaleError) and issubclass(cls, builtin)


def test_missing_extra_still_names_the_extra():
    e = MissingExtra("torch", "transformers")
    assert isinstance(e, RewardscaleError) and "rewardscale[transformers]" in str(e)
