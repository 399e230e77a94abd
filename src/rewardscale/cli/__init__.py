"""`rewardscale` command line: score responses, benchmark and train the judge, serve it, manage the embedded models."""

# (the docstring is the app's --help text) One module per command; what they share lives in
# `common` (consoles, failing cleanly, progress, building the GRM) and `options` (the flags
# derived from the configs), so no command module imports another and nothing imports this one
# but the entry point.

from __future__ import annotations

import sys

import typer

from . import bench, models_cmd, score, serve, train  # the modules stay reachable by their names

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.command()(score.score)
app.command()(bench.bench)
app.command("models")(models_cmd.models_cmd)
app.command()(serve.serve)
app.add_typer(train.app, name="train")  # `rewardscale train data|grounded|rft|rl|metarm`: SPCT training


def main() -> None:  # pragma: no cover
    sys.exit(app())
