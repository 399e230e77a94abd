"""The verdict options shared by `score`, `bench`, `serve` and `train rft`, and the upstream options of
`score` and `serve`, declared once (typer `Annotated` aliases) so the commands spell and document them
the same way."""

from __future__ import annotations

from typing import Annotated

import typer

ForceVerdict = Annotated[
    bool,
    typer.Option(
        "--force-verdict/--no-force-verdict", help="Force a grammar-constrained verdict on samples without one."
    ),
]
CritiqueBudget = Annotated[
    int | None,
    typer.Option("--critique-budget", min=1, help="With --force-verdict: tokens allowed before the verdict is forced."),
]
ScoreMode = Annotated[
    str,
    typer.Option("--score-mode", help="integer (paper) or expected (probability-weighted score from logprobs)."),
]
VerdictConstraint = Annotated[
    str,
    typer.Option(
        "--verdict-constraint", help="openai backend: how the server constrains: none, grammar, vllm, sglang."
    ),
]
ConstrainFormat = Annotated[
    bool,
    typer.Option(
        "--constrain-format/--no-constrain-format",
        help="Generate the whole output under a grammar for the three-part format (slower; llamacpp, openai).",
    ),
]
UpstreamTimeout = Annotated[
    float | None,
    typer.Option(
        "--upstream-timeout",
        min=0.001,
        help="openai backend: seconds one HTTP attempt may take, body included (score: 600; serve: --timeout).",
    ),
]
UpstreamRetries = Annotated[
    int,
    typer.Option(
        "--upstream-retries", min=0, help="openai backend: retries of a failed HTTP attempt (5xx, 429, bad body...)."
    ),
]
Lora = Annotated[
    list[str],
    typer.Option(
        "--lora",
        metavar="PATH[:SCALE]",
        help="llamacpp backend: a GGUF LoRA adapter applied on top of the model, e.g. OUT/adapter.gguf from "
        "`train rft --gguf-adapter` (repeatable; llama.cpp's PATH[:SCALE], scale 1 by default); its file name and "
        "sha256 become part of the model id, so stored samples of the plain model are not reused.",
    ),
]
