"""Plain data along the scoring road: Request -> SampleSpec -> Judgment -> Reward (+ JSON round trip)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, TypeVar, Union

from .errors import RewardscaleError

Message = dict[str, str]
Query = Union[str, Sequence[Message]]

ROLES = ("system", "user", "assistant")
T = TypeVar("T")


class InvalidRequest(RewardscaleError, ValueError):
    """A request that cannot be scored (no responses, bad roles, empty text...)."""


@dataclass(frozen=True)
class Request:
    """A conversation (the last user turn is the query) and n >= 1 candidate responses."""

    messages: tuple[Message, ...]
    responses: tuple[str, ...]
    id: str | None = None

    @classmethod
    def make(cls, query: Query, responses: Sequence[str], id: str | None = None) -> Request:
        """Build a validated request from a plain string or a list of {"role", "content"} messages."""
        if isinstance(query, str):
            messages: tuple[Message, ...] = ({"role": "user", "content": query},)
        else:
            messages = tuple({"role": m["role"], "content": m["content"]} for m in _check_messages(query))
        if isinstance(responses, str):
            raise InvalidRequest("responses must be a list of strings, not one string")
        responses = tuple(responses)
        if not responses:
            raise InvalidRequest("a request needs at least one response")
        for i, r in enumerate(responses):
            if not isinstance(r, str):
                raise InvalidRequest(f"response {i} is {type(r).__name__}, expected a string")
        if not messages or not any(m["content"].strip() for m in messages):
            raise InvalidRequest("the query is empty")
        for where, text in [(f"message {i}", m["content"]) for i, m in enumerate(messages)] + [
            (f"response {i}", r) for i, r in enumerate(responses)
        ]:
            _check_text(where, text)
        return cls(messages=messages, responses=responses, id=id)

    @property
    def n(self) -> int:
        return len(self.responses)

    @property
    def query(self) -> str:
        """The last user message (the query the responses answer)."""
        for m in reversed(self.messages):
            if m["role"] == "user":
                return m["content"]
        return self.messages[-1]["content"]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"messages": [dict(m) for m in self.messages], "responses": list(self.responses)}
        if self.id is not None:
            d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Request:
        """Accept `{"query"| "messages", "responses", "id"?}`; raise InvalidRequest naming the field."""
        if not isinstance(d, dict):
            raise InvalidRequest(f"expected a JSON object, got {type(d).__name__}")
        if "messages" in d:
            query = d["messages"]
        elif "query" in d:
            query = d["query"]
        else:
            raise InvalidRequest("missing field 'query' (a string) or 'messages' (a list of {role, content})")
        if not isinstance(query, (str, list)):
            raise InvalidRequest("field 'query'/'messages' must be a string or a list of messages")
        if "responses" not in d:
            raise InvalidRequest("missing field 'responses' (a list of strings)")
        if not isinstance(d["responses"], list):
            raise InvalidRequest("field 'responses' must be a list of strings")
        rid = d.get("id")
        return cls.make(query, d["responses"], id=None if rid is None else str(rid))


def _check_text(where: str, text: str) -> None:
    """Text must be encodable as UTF-8: a lone surrogate (JSON "\\ud800") can be neither stored,
    sent to a judge nor written out, so it is refused here, naming where it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidRequest(
            f"{where} contains a lone surrogate {text[e.start]!r} at character {e.start}: not valid Unicode text"
        ) from None


def _check_messages(messages: Sequence[Any]) -> Sequence[Message]:
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or "role" not in m:
            raise InvalidRequest(f"message {i} must be an object with string 'role' and 'content'")
        if m["role"] not in ROLES:
            raise InvalidRequest(f"message {i} has role {m['role']!r}; expected one of {', '.join(ROLES)}")
    return messages


@dataclass(frozen=True)
class Sampling:
    """Decoding parameters shared by every sample of a call (paper: temperature 0.5)."""

    temperature: float = field(default=0.5, metadata={"help": "Sampling temperature (paper: 0.5)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling: keep the tokens of this much probability."})
    max_tokens: int = field(default=1024, metadata={"help": "Token limit per sample."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SampleSpec:
    """One planned GRM sample: which permutation it shows and the seed that draws it.

    `permutation[p]` is the original index of the response shown at position p. Samples with the
    same permutation share one prompt (`group`) and are drawn as `n` completions of it; `slot`
    is the sample's index among them.
    """

    index: int
    permutation: tuple[int, ...]
    seed: int
    group: int = 0
    slot: int = 0

    def to_original(self, shown: Sequence[T]) -> tuple[T, ...]:
        """Values in shown order (as the judge wrote them) -> the same values in original order."""
        return to_original(shown, self.permutation)

    def to_shown(self, original: Sequence[T]) -> tuple[T, ...]:
        """Values in original response order -> the same values in the order this sample showed."""
        return to_shown(original, self.permutation)


def to_original(shown: Sequence[T], permutation: Sequence[int]) -> tuple[T, ...]:
    """`shown[p]` belongs to response `permutation[p]`: put each value at its original index."""
    if len(shown) != len(permutation):
        raise ValueError(f"{len(shown)} values for a permutation of {len(permutation)} responses")
    original: list[T] = list(shown)
    for pos, orig in enumerate(permutation):
        original[orig] = shown[pos]
    return tuple(original)


def to_shown(original: Sequence[T], permutation: Sequence[int]) -> tuple[T, ...]:
    """The inverse of `to_original`: position p gets the value of response `permutation[p]`."""
    if len(original) != len(permutation):
        raise ValueError(f"{len(original)} values for a permutation of {len(permutation)} responses")
    return tuple(original[orig] for orig in permutation)


class Status(str, Enum):
    """Outcome of parsing one judge output; only OK, RECOVERED and FORCED carry scores."""

    OK = "ok"
    RECOVERED = "recovered"  # lenient mode fixed a near-miss (said so, never silent)
    NO_VERDICT = "no_verdict"  # no `Scores: \boxed{...}` at all
    WRONG_COUNT = "wrong_count"  # a verdict with the wrong number of scores
    OUT_OF_RANGE = "out_of_range"  # an integer outside 1..10
    NOT_INTEGER = "not_integer"  # something in the box that is not an integer
    TRUNCATED = "truncated"  # hit the token limit before a verdict
    BACKEND_ERROR = "backend_error"  # the backend failed for this sample
    FORCED = "forced"  # no verdict of its own; the verdict line was decoded under a constraint

    @property
    def valid(self) -> bool:
        return self in (Status.OK, Status.RECOVERED, Status.FORCED)


@dataclass
class Judgment:
    """One parsed GRM sample. `scores` are in the ORIGINAL response order (None unless valid)."""

    spec: SampleSpec
    status: Status
    text: str
    scores: tuple[int, ...] | None = None
    shown_scores: tuple[int, ...] | None = None  # as the judge wrote them (shown order)
    principles: str = ""
    critique: str = ""
    attempts: int = 1
    finish_reason: str | None = None
    note: str = ""
    expected: tuple[float, ...] | None = None  # expected-score mode: E[score] per response, original order
    q: float | None = None  # meta RM: probability that this sample's scores are correct (MetaRM@k)
    tokens: int = 0  # generated tokens this sample cost: every attempt, plus its forced/re-decoded verdict
    checked: str | None = None  # code check: the output of the judge's program this sample was shown
    check_program: str | None = None  # ... and that program (`codecheck.render_check` rebuilds the section)

    @property
    def valid(self) -> bool:
        return self.status.valid and self.scores is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.spec.index,
            "permutation": list(self.spec.permutation),
            "seed": self.spec.seed,
            "status": self.status.value,
            "scores": None if self.scores is None else list(self.scores),
            "shown_scores": None if self.shown_scores is None else list(self.shown_scores),
            "principles": self.principles,
            "critique": self.critique,
            "attempts": self.attempts,
            "finish_reason": self.finish_reason,
            "note": self.note,
            "text": self.text,
            "tokens": self.tokens,
            **({"expected": list(self.expected)} if self.expected is not None else {}),
            **({"q": self.q} if self.q is not None else {}),
            **({"checked": self.checked} if self.checked is not None else {}),
            **({"check_program": self.check_program} if self.check_program is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Judgment:
        spec = SampleSpec(index=d["index"], permutation=tuple(d["permutation"]), seed=d["seed"])
        return cls(
            spec=spec,
            status=Status(d["status"]),
            text=d.get("text", ""),
            scores=None if d.get("scores") is None else tuple(d["scores"]),
            shown_scores=None if d.get("shown_scores") is None else tuple(d["shown_scores"]),
            principles=d.get("principles", ""),
            critique=d.get("critique", ""),
            attempts=d.get("attempts", 1),
            finish_reason=d.get("finish_reason"),
            note=d.get("note", ""),
            expected=None if d.get("expected") is None else tuple(d["expected"]),
            q=d.get("q"),
            tokens=d.get("tokens", 0),
            checked=d.get("checked"),
            check_program=d.get("check_program"),
        )


@dataclass
class Reward:
    """Voting@k result for one request: per-response sums, the best response and every sample.

    `rewards[i]` is the sum of response i's scores over the valid samples (k..10k when all k are
    valid). `best` is the argmax, ties broken by a seeded random choice (None when every sample
    abstained); `win_prob[i]` is the expected value of "i is chosen" under that tie-break
    (1/#tied for each tied leader), for tie-aware accuracy.

    MetaRM@k (`method` "metarm"): every sample carries its meta RM score `q`; only the `k_meta`
    samples at positions `selected` (the top k_meta by q) voted, so `rewards` sums those.
    """

    request: Request
    rewards: list[float]
    best: int | None
    win_prob: list[float]
    samples: list[Judgment] = field(default_factory=list)
    k: int = 0
    method: str = "voting"
    k_meta: int | None = None
    selected: list[int] | None = None  # MetaRM@k: positions in `samples` of the samples that voted

    @property
    def n_valid(self) -> int:
        return sum(j.valid for j in self.samples)

    @property
    def voters(self) -> list[Judgment]:
        """The samples whose scores are in `rewards` (all of them, or MetaRM@k's selection)."""
        return self.samples if self.selected is None else [self.samples[i] for i in self.selected]

    @property
    def n_abstained(self) -> int:
        return len(self.samples) - self.n_valid

    @property
    def mean_scores(self) -> list[float | None]:
        """Per-response mean score on 1..10 over the valid samples that voted (None when none was valid)."""
        n = sum(j.valid for j in self.voters)
        return [r / n if n else None for r in self.rewards]

    def to_dict(self, samples: bool = True, request: bool = True) -> dict[str, Any]:
        """The one JSON shape of a Reward (CLI output, the server's results, the integrations):
        per-response Voting@k sums and mean 1..10 scores, the best response, tie-aware win
        probabilities, valid/abstained counts; MetaRM@k adds `k_meta` and `selected` (positions
        of the samples that voted). `request=False` leaves the scored request out (the server's
        results: the caller sent it), `samples=False` the samples."""
        d: dict[str, Any] = {
            "id": self.request.id,
            "rewards": self.rewards,
            "mean_scores": self.mean_scores,
            "best": self.best,
            "win_prob": self.win_prob,
            "k": self.k,
            "method": self.method,
            "n_valid": self.n_valid,
            "n_abstained": self.n_abstained,
        }
        if request:
            d["request"] = self.request.to_dict()
        if self.k_meta is not None:
            d["k_meta"] = self.k_meta
            d["selected"] = self.selected
        if samples:
            d["samples"] = [j.to_dict() for j in self.samples]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reward:
        """The Reward `to_dict` wrote (with its request); `mean_scores` is derived, so not read."""
        return cls(
            request=Request.from_dict(d["request"]),
            rewards=list(d["rewards"]),
            best=d["best"],
            win_prob=list(d["win_prob"]),
            samples=[Judgment.from_dict(s) for s in d.get("samples", [])],
            k=d.get("k", 0),
            method=d.get("method", "voting"),
            k_meta=d.get("k_meta"),
            selected=d.get("selected"),
        )
