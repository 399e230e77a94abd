"""Reward-model benchmark harness: loaders (one Example format), Voting@k-from-one-K-run
estimator, runner, report, baselines. See `rewardscale bench --help`."""

from ..examples import Example, Kind
from .loaders import LOADERS, SchemaError, load
from .run import parse_ks, run_bench

__all__ = ["LOADERS", "Example", "Kind", "SchemaError", "load", "parse_ks", "run_bench"]
