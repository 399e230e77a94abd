"""Forced verdicts and expected scores: make every sample end in a `Scores: \\boxed{...}` line.

A sample that ends (end of text or token limit) without a valid verdict is *continued* from its
own text with `Scores: \\boxed{` and decoded under a constraint that admits exactly n integers
1..10, comma separated, then `}`: a GBNF grammar on llama.cpp, a regex for vLLM/SGLang structured
decoding. It is the same `Backend.generate` call as any sample, with `GenerationRequest(prefix=...,
verdict=n)`, on backends whose capabilities say `verdicts`; where nothing can constrain, GRM falls
back to its bounded retries.

Expected scores: with the verdict's token log-probabilities, each response's score is the
probability-weighted mean over 1..10 at its score position instead of the sampled integer.

Constrained full output (optional): the whole generation follows the three-part format under
`format_grammar(n)` (`GenerationRequest.grammar`), on backends that decode under a grammar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .backends.base import TokenLogprobs, capabilities_of

VERDICT_PREFIX = "Scores: \\boxed{"
# How an OpenAI-compatible server constrains a forced verdict: llama.cpp server GBNF, vLLM / SGLang
# regex, or not at all (`OpenAIBackend(verdict_constraint=...)`, `BackendConfig.verdict_constraint`).
VERDICT_CONSTRAINTS = ("none", "grammar", "vllm", "sglang")

# A trailing, incomplete or invalid verdict the judge started: cut it before forcing a new one.
_LAST_LABEL = re.compile(r"Scores\s*:", re.IGNORECASE)
_TAIL = 200  # a `Scores:` label this close to the end starts the (failed) verdict line


SCORE_RULE = 'score ::= [1-9] | "10"\n'  # one score: an integer 1..10


def _scores(n: int, sep: str) -> str:
    """GBNF sequence of n `score`s joined by `sep` (a GBNF term), then the closing brace."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return f" {sep} ".join(["score"] * n) + ' "}"'


def _literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def verdict_grammar(n: int) -> str:
    """GBNF for what follows `Scores: \\boxed{`: n integers 1..10, `, `-separated, then `}`."""
    return f"root ::= {_scores(n, _literal(', '))}\n{SCORE_RULE}"


def format_grammar(n: int) -> str:
    """GBNF for a whole judge output in the three-part format, for n responses (the optional
    constrained full output, `GRM(constrain_format=True)`): `Specific Criteria: ` text,
    `\\nAnalysis: ` text, `\\nScores: \\boxed{` n integers 1..10 separated by a comma and an
    optional space, `}`, and nothing after. Each text is one or more non-empty lines (blank lines
    allowed between them), so no part can be left empty; the output always reads with the strict
    parser (`template.parse`) unless the token limit cuts it."""
    criteria, analysis, scores = (
        _literal("Specific Criteria: "),
        _literal("\nAnalysis: "),
        _literal("\n" + VERDICT_PREFIX),
    )
    sep = 'sep ::= "," " "?\n' if n > 1 else ""
    return (
        f"root ::= {criteria} text {analysis} text {scores} verdict\n"
        f"verdict ::= {_scores(n, 'sep')}\n{sep}"
        'text ::= line ("\\n"+ line)*\n'
        "line ::= [^\\n]+\n"
        f"{SCORE_RULE}"
    )


CHARS_PER_TOKEN = 4  # measured: ~3.5-4.1 characters per generated token in the judges' critiques


def budget_grammar(n: int, chars: int) -> str:
    """GBNF for a sample whose verdict is forced in the same decode (`JudgeConfig.verdict_in_slot`):
    free text of at most `chars` characters, then `\\boxed{` and n integers 1..10 and `}`; the
    text may end earlier, with its own verdict or with none (a verdict pass then forces one), but
    at `chars` characters only the verdict may follow. The free text cannot hold `\\b`, so the
    only box in it is the verdict's (`budget_verdict` reads which way it ended)."""
    if chars < 1:
        raise ValueError(f"chars must be >= 1, got {chars}")
    return (
        f"root ::= text{{0,{chars - 1}}} verdict? | text{{{chars}}} verdict\n"
        f'verdict ::= "\\\\boxed{{" {_scores(n, _literal(", "))}\n'
        'text ::= [^\\\\] | "\\\\" [^b]\n'
        f"{SCORE_RULE}"
    )


_BOX_AT_END = re.compile(r"\\boxed\{[^{}]*\}$")
_LABEL_BEFORE = re.compile(r"Scores\s*:\s*$", re.IGNORECASE)


def budget_verdict(text: str, chars: int) -> tuple[str, bool]:
    """A `budget_grammar` completion as the parser reads it, and whether its verdict was forced:
    a verdict that came at the budget, or without the `Scores:` label, gets the label the
    verdict pass would have written (`\\nScores: `) and counts as forced; a text without a
    verdict comes back as it is (not forced: the verdict pass forces it)."""
    box = _BOX_AT_END.search(text)
    if box is None:
        return text, False
    body = text[: box.start()]
    if len(body) < chars and _LABEL_BEFORE.search(body):
        return text, False
    scores = box.group(0)[len("\\boxed{") :]
    return f"{_LABEL_BEFORE.sub('', body).rstrip()}\n{VERDICT_PREFIX}{scores}", True


def verdict_regex(n: int) -> str:
    """The same language as `verdict_grammar(n)`, as a regex (vLLM / SGLang structured outputs)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    score = "(10|[1-9])"
    return ", ".join([score] * n) + r"\}"


def forcing_prefix(text: str, cut: int | None = None) -> str:
    """The assistant text a verdict continues: the sample's own text up to `cut` (where its own
    verdict starts, when re-decoding one) or without any started-but-invalid verdict at its end,
    ending in a fresh `Scores: \\boxed{`."""
    head = text if cut is None else text[:cut]
    labels = list(_LAST_LABEL.finditer(head))
    if cut is None and labels and len(head) - labels[-1].start() <= _TAIL:
        head = head[: labels[-1].start()]
    head = head.rstrip()
    return f"{head}\n{VERDICT_PREFIX}" if head else VERDICT_PREFIX


def can_force(backend: object) -> bool:
    """Whether `backend` decodes constrained verdicts (`GenerationRequest.verdict`; and is
    configured to): its capabilities say `verdicts`."""
    return capabilities_of(backend).verdicts


def can_constrain_format(backend: object) -> bool:
    """Whether `backend` decodes a whole generation under `GenerationRequest.grammar`."""
    return capabilities_of(backend).constrained_generation


def parse_logprobs(content: Sequence[dict] | None) -> tuple[TokenLogprobs, ...] | None:
    """OpenAI-style `logprobs.content` (llama.cpp server, vLLM) -> TokenLogprobs."""
    if not content:
        return None
    out = []
    for t in content:
        top = tuple((str(a.get("token", "")), float(a.get("logprob", -math.inf))) for a in t.get("top_logprobs") or [])
        out.append(TokenLogprobs(str(t.get("token", "")), float(t.get("logprob", -math.inf)), top))
    return tuple(out)


def strip_prefix(text: str, prefix: str) -> str:
    """Servers differ: llama.cpp returns prefix + continuation, vLLM only the continuation."""
    return text[len(prefix) :] if text.startswith(prefix) else text


_DIGIT = re.compile(r"^\s*(\d+)\s*$")


def expected_scores(logprobs: Sequence[TokenLogprobs], n: int) -> tuple[float, ...] | None:
    """Probability-weighted mean score on 1..10 at each of the n score positions of a verdict.

    `logprobs` are the tokens decoded after `Scores: \\boxed{`. At a score's first token the top
    alternatives that are scores (digits; "10" where a tokenizer has it as one token) are
    renormalised. Tokenizers that split "10" into "1", "0" (Qwen) make a "1" ambiguous: when the
    sampled token is "1", the next position tells P("0" | "1") exactly; otherwise the mass of "1"
    counts as whichever of 1 and 10 is nearer the sampled score (a judge writing 9 that considered
    "1" meant 10). None when a score position cannot be found.
    """
    tokens = list(logprobs)
    out: list[float] = []
    i = 0
    for _ in range(n):
        while i < len(tokens) and not _DIGIT.match(tokens[i].token):
            i += 1
        if i >= len(tokens):
            return None
        first = tokens[i]
        sampled = first.token.strip()
        follow = tokens[i + 1] if i + 1 < len(tokens) else None
        is_ten = sampled == "1" and follow is not None and follow.token.strip() == "0"
        sampled_value = 10 if is_ten else int(sampled)
        probs: dict[int, float] = {}
        p_one = 0.0
        for tok, lp in first.top or ((first.token, first.logprob),):
            m = _DIGIT.match(tok)
            if not m:
                continue
            value = int(m.group(1))
            p = math.exp(lp)
            if tok.strip() == "1":
                p_one += p
            elif 1 <= value <= 10:
                probs[value] = probs.get(value, 0.0) + p
        if p_one:
            if sampled == "1" and follow is not None:
                p_zero = _p_zero_after_one(follow)
                probs[10] = probs.get(10, 0.0) + p_one * p_zero
                probs[1] = probs.get(1, 0.0) + p_one * (1 - p_zero)
            else:
                nearest = 10 if sampled_value >= 6 else 1
                probs[nearest] = probs.get(nearest, 0.0) + p_one
        total = sum(probs.values())
        if total <= 0:
            return None
        out.append(sum(v * p for v, p in probs.items()) / total)
        i += 2 if is_ten else 1
    return tuple(out)


def _p_zero_after_one(follow: TokenLogprobs) -> float:
    """P(next is "0") among the ways a score that began with "1" can go on ("0", ",", "}")."""
    zero = other = 0.0
    for tok, lp in follow.top or ((follow.token, follow.logprob),):
        t = tok.strip()
        if t == "0":
            zero += math.exp(lp)
        elif t and t[0] in ",}":
            other += math.exp(lp)
    if zero + other == 0:
        return 1.0 if follow.token.strip() == "0" else 0.0
    return zero / (zero + other)
