"""The server's settings in one dataclass: its judge's (`JudgeConfig`), limits and batching knobs
(the CLI and tests build it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..config import JudgeConfig, help_field
from ..scales import SCALES
from ..vote import k_meta_at


@dataclass(frozen=True)
class ServerConfig:
    """Everything `create_app` needs besides the GRM.

    k: default samples per request (Voting@k) when a call does not say; max_k bounds what a call
        may ask for.
    k_meta: with a meta RM loaded, the samples that vote (MetaRM@k) when a call does not say;
        None: k // 2 of the call's k (at least 1). Capped at a call's k (`vote.k_meta_at`, the
        rule everywhere). Needs a meta RM (`create_app(..., meta_rm=)`).
    max_batch: most GRM requests in one backend call (1 turns dynamic batching off).
    max_wait_ms: how long the batcher waits for more requests after the first one arrives; work
        that queues while the backend is busy is taken at once, without waiting.
    max_queue: most GRM requests waiting; a call that would go past it is answered 503.
    timeout_s: a call not answered within this many seconds gets 504 (its queued work is dropped).
    max_requests: most GRM requests in one HTTP call (one OpenRLHF query = one response).
    max_responses: most responses in one GRM request.
    max_chars: most characters in one GRM request (conversation + responses).
    max_messages: most messages in one GRM request's conversation (empty ones count too).
    max_body_bytes: largest accepted HTTP body.
    reward_scale: how /get_reward turns a result into a scalar (see `scales.scaled`).
    abstain_reward: the /get_reward reward of a response whose samples all abstained.
    workers: batches scored side by side when the backend is thread-safe (openai, llamacpp), so
        a batch stuck on a hung upstream does not hold every call behind it; 1 otherwise.
    auth_token: when set, every endpoint but /health needs `Authorization: Bearer <token>`.
    judge: the judge's settings (`rewardscale score`'s): `rewardscale serve` builds its GRM from
        them; `create_app` refuses a GRM built otherwise. None: whatever the GRM was built with.
    """

    k: int = help_field("Default samples per request (Voting@k) when a call omits k.", default=4)
    max_k: int = help_field("Largest k a call may ask for.", default=64)
    k_meta: int | None = help_field(
        "With --meta-rm: default k_meta when a call omits it (default: k // 2; capped at a call's k).", default=None
    )
    max_batch: int = help_field("GRM requests per backend call (1: no batching).", default=32)
    max_wait_ms: float = help_field("Wait for more requests to batch (ms).", default=10.0)
    max_queue: int = help_field("Queued GRM requests before answering 503.", default=4096)
    timeout_s: float = help_field("Seconds before a call is answered 504.", default=600.0)
    max_requests: int = help_field("GRM requests per HTTP call.", default=1024)
    max_responses: int = help_field("Responses per GRM request.", default=64)
    max_chars: int = help_field("Characters per GRM request.", default=100_000)
    max_messages: int = 1000  # no flag (a field without help text is not a command-line option)
    max_body_bytes: int = 32 * 2**20
    reward_scale: str = help_field(
        f"/get_reward scalar: {', '.join(SCALES)} (unit: mean score mapped to 0..1).", default="unit"
    )
    abstain_reward: float = help_field("/get_reward reward when all samples abstain.", default=0.0)
    workers: int = help_field("Batches scored side by side (openai, llamacpp backends; others use 1).", default=4)
    auth_token: str | None = help_field(
        "Require 'Authorization: Bearer TOKEN' on every endpoint but /health (env REWARDSCALE_API_TOKEN).",
        default=None,
        repr=False,
    )
    judge: JudgeConfig | None = None

    def __post_init__(self) -> None:
        if self.auth_token == "":  # an empty REWARDSCALE_API_TOKEN is no token
            object.__setattr__(self, "auth_token", None)
        positive = ("k", "max_k", "max_batch", "max_queue", "max_requests", "max_responses", "max_chars")
        positive += ("max_messages", "workers")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.k > self.max_k:
            raise ValueError(f"k ({self.k}) is above max_k ({self.max_k})")
        if self.k_meta is not None:
            k_meta_at(self.k, self.k_meta)  # below 1: ValueError; above k: capped per call
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError("max_wait_ms must be >= 0 and timeout_s > 0")
        if self.reward_scale not in SCALES:
            raise ValueError(f"reward_scale must be one of {', '.join(SCALES)}, got {self.reward_scale!r}")

    def meta_default(self, k: int) -> int:
        """The k_meta of a call with `k` samples that does not name one (server has a meta RM)."""
        return k_meta_at(k, self.k_meta)

    def to_dict(self) -> dict[str, Any]:
        """The settings, the token left out (a secret)."""
        d = asdict(self)
        d["auth_token"] = None if self.auth_token is None else "***"
        d["judge"] = None if self.judge is None else self.judge.to_dict()
        return d
