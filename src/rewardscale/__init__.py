"""rewardscale: generalist generative reward models with inference-time scaling (DeepSeek-GRM)."""

from .errors import RewardscaleError
from .grm import GRM
from .types import InvalidRequest, Judgment, Request, Reward, SampleSpec, Sampling, Status

__all__ = [
    "GRM",
    "InvalidRequest",
    "Judgment",
    "Request",
    "Reward",
    "RewardscaleError",
    "SampleSpec",
    "Sampling",
    "Status",
]
__version__ = "0.1.0"
