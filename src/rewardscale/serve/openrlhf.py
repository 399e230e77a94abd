"""OpenRLHF's remote reward protocol mapped onto GRM requests.

OpenRLHF POSTs `{"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [...]}`
(strings with the policy's chat template applied, special tokens kept) and reads
`{"rewards": [...], "scores": [...], "extra_logs": {name: [...]}}`, one value per query. We cut
each query at its prompt to get the response, read the prompt's chat template back into messages,
and score all responses to the same prompt together as one GRM request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..integrations.text import Grouped, group_by_prompt, strip_special
from ..types import InvalidRequest


@dataclass(frozen=True)
class RewardCall:
    """A validated /get_reward body: one (prompt, response) per query, in order."""

    prompts: list[str]
    responses: list[str]
    k: int | None = None
    k_meta: int | None = None


def split_query(query: str, prompt: str | None, i: int) -> tuple[str, str]:
    """(prompt, response) of one OpenRLHF query string.

    With `prompt`: the query must contain it; the response is what follows (leading pad/BOS
    tokens before the prompt are ignored). Without: the last assistant turn of the query's chat
    template is the response, the turns before it the prompt.
    """
    if prompt is not None:
        at = query.find(prompt) if prompt else 0
        if at < 0 or strip_special(query[:at]):
            raise InvalidRequest(f"query[{i}] does not contain prompts[{i}]; send query = prompt + response")
        return prompt, strip_special(query[at + len(prompt) :])
    for marker in ("<|im_start|>assistant\n", "<|start_header_id|>assistant<|end_header_id|>\n\n"):
        at = query.rfind(marker)
        if at >= 0:
            return query[: at + len(marker)], strip_special(query[at + len(marker) :])
    raise InvalidRequest(
        f"query[{i}] has no 'prompts' entry and no ChatML/Llama-3 assistant turn to split at; "
        "send 'prompts' (OpenRLHF does) so the response can be cut from the query"
    )


def parse_call(body: Any) -> RewardCall:
    """Validate a /get_reward body; raise InvalidRequest naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest(f"expected a JSON object, got {type(body).__name__}")
    queries = body.get("query")
    if not isinstance(queries, list) or not queries:
        raise InvalidRequest("field 'query' must be a non-empty list of strings (prompt + response)")
    prompts = body.get("prompts")
    if prompts is not None and (not isinstance(prompts, list) or len(prompts) != len(queries)):
        raise InvalidRequest(f"field 'prompts' must be a list of {len(queries)} strings, one per query")
    labels = body.get("labels")
    if labels is not None and (not isinstance(labels, list) or len(labels) != len(queries)):
        raise InvalidRequest(f"field 'labels' must be a list of {len(queries)} items, one per query")
    k = body.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
        raise InvalidRequest("field 'k' must be an integer")
    k_meta = body.get("k_meta")
    if k_meta is not None and (isinstance(k_meta, bool) or not isinstance(k_meta, int)):
        raise InvalidRequest("field 'k_meta' must be an integer")
    out_prompts, out_responses = [], []
    for i, q in enumerate(queries):
        if not isinstance(q, str):
            raise InvalidRequest(f"query[{i}] must be a string, got {type(q).__name__}")
        p = None if prompts is None else prompts[i]
        if p is not None and not isinstance(p, str):
            raise InvalidRequest(f"prompts[{i}] must be a string, got {type(p).__name__}")
        prompt, response = split_query(q, p, i)
        out_prompts.append(prompt)
        out_responses.append(response)
    return RewardCall(out_prompts, out_responses, k, k_meta)


def to_requests(call: RewardCall, max_group: int) -> Grouped:
    """Group the call's responses by prompt (chunks of at most `max_group`) into GRM requests."""
    try:
        return group_by_prompt(call.prompts, call.responses, max_group=max_group)
    except InvalidRequest as e:
        raise InvalidRequest(f"a prompt cannot be scored: {e}") from e
