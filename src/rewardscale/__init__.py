"""rewardscale: generalist generative reward models with inference-time scaling (DeepSeek-GRM)."""

from .config import BackendConfig, JudgeConfig
from .errors import RewardscaleError
from .grm import GRM
from .types import InvalidRequest, Judgment, Request, Reward, SampleSpec, Sampling, Status

__all__ = [
    "GRM",
    "BackendConfig",
    "InvalidRequest",
    "JudgeConfig",
    "Judgment",
    "Request",
    "Reward",
    "RewardscaleError",
    "SampleSpec",
    "Sampling",
    "Status",
]
__version__ = "0.1.0"
