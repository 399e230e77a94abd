"""Long commands show progress off a terminal too: log lines with a rate and an ETA."""

import io

from rich.console import Console
from rich.progress import Progress

from rewardscale.cli import common as cli_common


def test_rate_callback_prints_log_lines_with_eta_off_a_terminal(monkeypatch):
    out = io.StringIO()
    bar = Progress(console=Console(file=out, force_terminal=False))
    task = bar.add_task("sampling K=8", total=16, rate="")
    monkeypatch.setattr(cli_common, "LOG_EVERY_S", 0.0)
    advance = cli_common.rate_callback(bar, task)
    advance(4)
    advance(12)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("sampling K=8")]
    assert len(lines) == 2
    assert "4/16 samples" in lines[0] and "ETA" in lines[0]
    assert "16/16 samples" in lines[1]


def test_rate_callback_is_quiet_between_log_intervals(monkeypatch):
    out = io.StringIO()
    bar = Progress(console=Console(file=out, force_terminal=False))
    task = bar.add_task("sampling", total=100, rate="")
    monkeypatch.setattr(cli_common, "LOG_EVERY_S", 3600.0)
    advance = cli_common.rate_callback(bar, task)
    for _ in range(10):
        advance(1)
    assert "samples" not in out.getvalue()  # the first interval has not passed; not done yet
    advance(90)
    assert "100/100 samples" in out.getvalue()  # the end is always logged


def test_the_rate_counts_what_was_generated_not_what_a_store_served(monkeypatch):
    out = io.StringIO()
    bar = Progress(console=Console(file=out, force_terminal=False))
    task = bar.add_task("RFT", total=20, rate="")
    monkeypatch.setattr(cli_common, "LOG_EVERY_S", 0.0)
    cli_common.rate_callback(bar, task, generated=lambda: 0)(10)  # all 10 came from the store
    line = out.getvalue()
    assert "10/20 samples, 0.0/min" in line and "ETA" not in line  # no rate yet, so no ETA
