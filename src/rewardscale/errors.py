"""The one base of rewardscale's own exceptions, so a caller can catch everything the project
raises on purpose (`except RewardscaleError`); each class keeps its builtin base as well."""

from __future__ import annotations


class RewardscaleError(Exception):
    """Base of every exception rewardscale defines (a bad request, a backend down, a bad file...)."""
