"""Bench report: results.json, results.md (markdown tables), accuracy_vs_k.png and
accuracy_vs_tokens.png in one folder. All files are written atomically."""

from __future__ import annotations

import json
from itertools import cycle
from pathlib import Path
from typing import Any

from ..batch import write_text_atomic

PRETTY = {
    "rewardbench": "RewardBench",
    "rewardbench2": "RewardBench 2",
    "ppe-preference": "PPE-P",
    "ppe-correctness": "PPE-C",
    "rmb": "RMB",
    "realmistake": "ReaLMistake (ROC-AUC)",
    "rm-bench": "RM-Bench",
    "judgebench": "JudgeBench",
    "generic": "generic",
}

# Per-subset curves are drawn without asking when a benchmark has at most this many subsets.
FEW_SUBSETS = 6
SUBSET_MARKERS = ("v", "D", "x", "P", "*", "h", "<", ">")


def pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def with_ci(point: dict[str, Any]) -> str:
    """A curve point as `score [95% CI]`, in %."""
    return f"{pct(point['score'])} [{pct(point['ci'][0])}, {pct(point['ci'][1])}]"


def markdown(results: dict[str, Any]) -> str:
    """Markdown tables: per benchmark and Overall at each k (with 95% CI and chance), per subset,
    RM-Bench's sections and style matrix, baselines, parse failures, position bias and position
    consistency."""
    ks = [str(k) for k in results["ks"]]
    what = "Voting@k and MetaRM@k" if results.get("metarm") else "Voting@k"
    lines = [f"# {what} from one K = {results['K']} run", ""]
    if results.get("partial"):
        p = results["partial"]
        lines += [
            f"**Partial report**: {p['examples_complete']} of {p['examples_total']} examples have all their "
            "samples in the store; only those are scored.",
            "",
        ]
    meta = results.get("meta", {})
    if meta:
        lines += [", ".join(f"{k}: `{v}`" for k, v in meta.items()), ""]
    lines += ["| benchmark | n | chance | " + " | ".join(f"Voting@{k}" for k in ks) + " |"]
    lines += ["|---|---:|---:|" + "---:|" * len(ks)]
    for name, b in results["benchmarks"].items():
        cells = [with_ci(b["curve"][k]) for k in ks]
        lines.append(
            f"| {PRETTY.get(name, name)} | {b['n_examples']} | {pct(b.get('chance'))} | " + " | ".join(cells) + " |"
        )
    if "overall" in results:
        o = results["overall"]
        lines.append(
            f"| **Overall** ({', '.join(o['members'])}) | | | " + " | ".join(pct(o["curve"][k]) for k in ks) + " |"
        )
    lines += [
        "",
        "Scores in %, ties counted 1/#tied (expected accuracy); [95% bootstrap interval over examples]; chance = "
        "the score of a judge picking at random. Voting@k for k < K is the average over all (or, when too many, "
        "random) k-subsets of the K samples.",
    ]
    if results.get("metarm"):
        lines += ["", *metarm_markdown(results)]
    if any("curve_expected" in b for b in results["benchmarks"].values()):
        lines += ["", *expected_markdown(results)]
    lines += ["", *compute_markdown(results)]
    lines += [
        "",
        "## Seeded random tie-break",
        "",
        "| benchmark | " + " | ".join(f"Voting@{k}" for k in ks) + " |",
        "|---|" + "---:|" * len(ks),
    ]
    for name, b in results["benchmarks"].items():
        lines.append(
            f"| {PRETTY.get(name, name)} | " + " | ".join(pct(b["curve"][k]["score_sampled"]) for k in ks) + " |"
        )
    ranked = {n: b for n, b in results["benchmarks"].items() if b.get("metric") != "roc_auc"}
    if ranked:
        lines += [
            "",
            "## Ties counted as wrong (the rule of RM-Bench's and JudgeBench's own scripts)",
            "",
            "| benchmark | " + " | ".join(f"Voting@{k}" for k in ks) + " |",
            "|---|" + "---:|" * len(ks),
        ]
        for name, b in ranked.items():
            lines.append(
                f"| {PRETTY.get(name, name)} | " + " | ".join(pct(b["curve"][k].get("score_strict")) for k in ks) + " |"
            )
    for name, b in results["benchmarks"].items():
        if name == "rm-bench" and b.get("sections"):
            lines += ["", *rm_bench_markdown(b, ks)]
    lines += ["", "## Per subset", "", "| benchmark | subset | n | " + " | ".join(f"@{k}" for k in ks) + " |"]
    lines += ["|---|---|---:|" + "---:|" * len(ks)]
    for name, b in results["benchmarks"].items():
        for s, row in b["subsets"].items():
            lines.append(
                f"| {PRETTY.get(name, name)} | {s} | {row['n']} | " + " | ".join(pct(row.get(k)) for k in ks) + " |"
            )
    lines += [
        "",
        "## Parse failures, position bias and position consistency",
        "",
        "| benchmark | samples | abstained (no valid verdict after retries) | failed first try | "
        "first-shown wins | chance | first/chance | ties | best stays best across orders | "
        "same, both samples decided | chance (1/n) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b in results["benchmarks"].items():
        p, pb = b["parse"], b["position_bias"]
        pc = b.get("position_consistency", {})
        ratio = pb.get("first_over_chance")
        lines.append(
            f"| {PRETTY.get(name, name)} | {p.get('samples', 0)} | {pct(p.get('abstained_rate'))}% | "
            f"{pct(p.get('first_try_failure_rate'))}% | {pct(pb.get('first_wins'))}% | {pct(pb.get('chance'))}% | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {pct(pb.get('ties_rate'))}% | "
            f"{pct(pc.get('consistent'))}% | {pct(pc.get('consistent_decided'))}% | {pct(pc.get('chance'))}% |"
        )
    lines += [
        "",
        "Position consistency: over every pair of valid samples of one example that showed the responses in "
        "different orders, how often both name the same single best response (a tie is not); then the same "
        "among pairs where both samples have a single best, and that share for a judge picking at random.",
    ]
    checked = {n: b["parse"]["checked_rate"] for n, b in results["benchmarks"].items() if "checked_rate" in b["parse"]}
    if checked:
        lines += [
            "",
            "Code checks (`--code-check`): samples shown a checked answer (a program the judge wrote from the "
            "conversation alone ran and printed it): "
            + ", ".join(f"{PRETTY.get(n, n)} {pct(r)}%" for n, r in checked.items())
            + ".",
        ]
    if results.get("baselines"):
        lines += [
            "",
            "## Baselines (same data)",
            "",
            "| baseline | benchmark | score | 95% CI | note |",
            "|---|---|---:|---|---|",
        ]
        for bl in results["baselines"]:
            for name, r in bl["benchmarks"].items():
                lines.append(
                    f"| {bl['name']} | {PRETTY.get(name, name)} | {pct(r['score'])} | "
                    f"[{pct(r['ci'][0])}, {pct(r['ci'][1])}] | {r.get('note', '')} |"
                )
    return "\n".join(lines) + "\n"


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or x != x else f"{x:,.{digits}f}"


def _secs(x: float | None) -> str:
    """Seconds to 3 significant digits (a fake judge's milliseconds and a CPU judge's minutes)."""
    return "-" if x is None or x != x else f"{x:.3g}"


def expected_markdown(results: dict[str, Any]) -> list[str]:
    """Voting@k summing the judge's integer scores next to summing its expected scores
    (probability-weighted over 1..10), from the same samples: which score mode to use."""
    ks = [str(k) for k in results["ks"]]
    lines = [
        "## Integer vs expected scores (same samples)",
        "",
        "| benchmark | scores | " + " | ".join(f"Voting@{k}" for k in ks) + " |",
        "|---|---|" + "---:|" * len(ks),
    ]
    for name, b in results["benchmarks"].items():
        if "curve_expected" not in b:
            continue
        for label, curve in (("integer", b["curve"]), ("expected", b["curve_expected"])):
            cells = [with_ci(curve[k]) for k in ks]
            lines.append(f"| {PRETTY.get(name, name)} | {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Expected scores: each response's score is the mean of 1..10 under the judge's probabilities at its "
        "verdict (`--score-mode expected`), so two responses almost never tie.",
    ]
    return lines


def compute_markdown(results: dict[str, Any]) -> list[str]:
    """Per benchmark and k: the score next to its generated tokens and seconds per example, so
    k can be picked by budget (MetaRM@k beside Voting@k when a meta RM was used)."""
    ks = [str(k) for k in results["ks"]]
    metarm = bool(results.get("metarm"))
    head = "| benchmark | k | Voting@k | tokens / example | seconds / example |"
    rule = "|---|---:|---:|---:|---:|"
    if metarm:
        head += " MetaRM@k | seconds / example (MetaRM@k) |"
        rule += "---:|---:|"
    lines = ["## Compute per example", "", head, rule]
    for name, b in results["benchmarks"].items():
        for k in ks:
            c = b["curve"][k]
            row = (
                f"| {PRETTY.get(name, name)} | {k} | {pct(c['score'])} | {_num(c.get('tokens_per_example'))} | "
                f"{_secs(c.get('seconds_per_example'))} |"
            )
            if metarm:
                m = b.get("curve_metarm", {}).get(k, {})
                row += f" {pct(m.get('score'))} | {_secs(m.get('seconds_per_example'))} |"
            lines.append(row)
    t = results.get("timing")
    if t and t.get("seconds") is not None:
        when = (
            f"this run sampled for {_num(t['seconds'])} s and generated {t['tokens_generated']:,} tokens "
            f"in {t['samples_generated']:,} samples (the rest, if any, came from the store)"
        )
        phases = t.get("seconds_by_phase") or {}
        if t["seconds"] > 0 and any(phases.values()):
            shares = ", ".join(f"{name} {_num(v)} s ({100 * v / t['seconds']:.1f}%)" for name, v in phases.items() if v)
            when += f"; by phase: {shares}"
    else:
        when = "no sampling was timed in this run (stored-only report), so seconds are not given"
    lines += [
        "",
        "Generated tokens per example include every attempt and every forced or re-decoded verdict; Voting@k "
        "costs k/K of an example's K samples (each sample is in k/K of the k-subsets). Seconds are this run's "
        f"sampling wall time apportioned by generated tokens: {when}. MetaRM@k draws the same samples and adds "
        "the meta RM's scoring time.",
    ]
    return lines


def rm_bench_markdown(b: dict[str, Any], ks: list[str]) -> list[str]:
    """RM-Bench's own table at each k (domains, easy/normal/hard, Score) and its 3x3 style matrix
    at the smallest and largest k."""
    cols = list(b["sections"][ks[0]])
    lines = [
        "## RM-Bench: domains and style difficulty",
        "",
        "| k | " + " | ".join(cols) + " |",
        "|---:|" + "---:|" * len(cols),
    ]
    for k in ks:
        lines.append(f"| {k} | " + " | ".join(pct(b["sections"][k].get(c)) for c in cols) + " |")
    lines += [
        "",
        "Per domain group the mean of its easy, normal and hard accuracies; Easy/Normal/Hard the means over the "
        "groups; Score the mean of the groups (RM-Bench's total). Hard = the chosen response is plainer than the "
        "rejected one.",
    ]
    styles = ("concise", "detailed", "markdown")
    for k in dict.fromkeys([ks[0], ks[-1]]):
        m = b["style_matrix"][k]["all"]
        lines += [
            "",
            f"Style matrix at k = {k} (rows: chosen style, columns: rejected style; mean over domain groups):",
            "",
            "| chosen / rejected | " + " | ".join(styles) + " |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| {styles[i]} | " + " | ".join(pct(x) for x in row) + " |" for i, row in enumerate(m)]
    return lines


def metarm_markdown(results: dict[str, Any]) -> list[str]:
    """The MetaRM@k table: score [95% CI] and MetaRM@k - Voting@k [95% CI of the paired difference]."""
    ks = [str(k) for k in results["ks"]]
    m = results["metarm"]
    lines = [
        "## MetaRM@k (same K samples)",
        "",
        f"Meta RM: `{m.get('model', '?')}`; k_meta per k: "
        + ", ".join(f"{k}: {m['k_meta'][k]}" for k in ks)
        + (
            f"; scoring {m['seconds_per_sample'] * 1000:.1f} ms per sample"
            if m.get("seconds_per_sample") is not None
            else ""
        ),
        "",
        "| benchmark | " + " | ".join(f"MetaRM@{k}" for k in ks) + " |",
        "|---|" + "---:|" * len(ks),
    ]
    for name, b in results["benchmarks"].items():
        c = b.get("curve_metarm", {})
        cells = [with_ci(c[k]) for k in ks if k in c]
        lines.append(f"| {PRETTY.get(name, name)} | " + " | ".join(cells) + " |")
    if "overall" in results and "curve_metarm" in results["overall"]:
        o = results["overall"]["curve_metarm"]
        lines.append("| **Overall** | " + " | ".join(pct(o[k]) for k in ks) + " |")
    lines += ["", "| benchmark | " + " | ".join(f"Δ@{k}" for k in ks) + " |", "|---|" + "---:|" * len(ks)]
    for name, b in results["benchmarks"].items():
        c, v = b.get("curve_metarm", {}), b["curve"]
        cells = [
            f"{100 * (c[k]['score'] - v[k]['score']):+.1f} [{100 * c[k]['diff_ci'][0]:+.1f}, "
            f"{100 * c[k]['diff_ci'][1]:+.1f}]"
            for k in ks
            if k in c
        ]
        lines.append(f"| {PRETTY.get(name, name)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Δ = MetaRM@k − Voting@k in points, with the 95% bootstrap interval of the paired difference "
        "(same examples, same k-subsets).",
    ]
    return lines


def show_subsets(b: dict[str, Any], per_subset: bool | None) -> bool:
    """Whether the plot draws this benchmark's per-subset curves: always with `per_subset`, never
    with False, and by default when it has 2..FEW_SUBSETS subsets."""
    n = len(b.get("subsets", {}))
    return n > 1 and (per_subset is True or (per_subset is None and n <= FEW_SUBSETS))


def plot(results: dict[str, Any], path: Path, per_subset: bool | None = None) -> None:
    """Score versus k (log2 axis) per benchmark with its 95% band and its chance level (dashed;
    one grey line for benchmarks that share it); Overall dashed black; baselines dotted grey.
    Benchmarks whose subsets are shown (`show_subsets`) get a panel of their own with a thin
    curve per subset (in the main panel when it is the only benchmark)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("the plot needs matplotlib: pip install 'rewardscale[bench]'") from e
    ks = results["ks"]
    benches = results["benchmarks"]
    detail = [n for n, b in benches.items() if show_subsets(b, per_subset)]
    if len(benches) == 1:
        detail = []  # the subsets go into the main panel
    cols = min(2, 1 + len(detail))
    rows = -(-(1 + len(detail)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 4.5 * rows), squeeze=False)
    ax = axes[0][0]
    colors = {}
    for name, b in benches.items():
        colors[name] = _curve(ax, ks, b, PRETTY.get(name, name))
        if len(benches) == 1 and show_subsets(b, per_subset):
            _subset_curves(ax, ks, b, colors[name])
    _chance_lines(ax, benches, colors)
    if "overall" in results:
        ax.plot(ks, [100 * results["overall"]["curve"][str(k)] for k in ks], "k--", marker="s", label="Overall")
        if "curve_metarm" in results["overall"]:
            ym = [100 * results["overall"]["curve_metarm"][str(k)] for k in ks]
            ax.plot(ks, ym, "k-.", marker="^", label="Overall MetaRM@k")
    for bl in results.get("baselines", []):
        for name, r in bl["benchmarks"].items():
            ax.axhline(100 * r["score"], linestyle=":", color="gray")
            ax.annotate(f"{bl['name']} ({PRETTY.get(name, name)})", (ks[0], 100 * r["score"]), fontsize=7, va="bottom")
    model = results.get("meta", {}).get("model", "")
    what = "Voting@k and MetaRM@k" if results.get("metarm") else "Voting@k"
    title = f"{what} from one K={results['K']} run" + (f": {model}" if model else "")
    if results.get("partial"):
        title += f" (partial: {results['partial']['examples_complete']}/{results['partial']['examples_total']})"
    beside = _finish(ax, ks, title)
    for i, name in enumerate(detail, start=1):
        sub = axes[i // cols][i % cols]
        b = benches[name]
        _curve(sub, ks, b, PRETTY.get(name, name), color=colors[name])
        _subset_curves(sub, ks, b, colors[name])
        _chance_lines(sub, {name: b}, colors)
        beside |= _finish(sub, ks, f"{PRETTY.get(name, name)} per subset")
    for i in range(1 + len(detail), rows * cols):
        axes[i // cols][i % cols].set_visible(False)
    if beside:
        fig.set_size_inches(10 * cols, 4.5 * rows)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _curve(ax: Any, ks: list[int], b: dict[str, Any], label: str, color: str | None = None) -> str:
    """One benchmark's score curve with its 95% band (and MetaRM@k); returns its colour."""
    y = [100 * b["curve"][str(k)]["score"] for k in ks]
    lo = [100 * b["curve"][str(k)]["ci"][0] for k in ks]
    hi = [100 * b["curve"][str(k)]["ci"][1] for k in ks]
    (line,) = ax.plot(ks, y, marker="o", color=color, label=f"{label} (n={b['n_examples']})")
    color = line.get_color()
    ax.fill_between(ks, lo, hi, alpha=0.15, color=color)
    if "curve_metarm" in b:
        ym = [100 * b["curve_metarm"][str(k)]["score"] for k in ks]
        ax.plot(ks, ym, marker="^", linestyle="-.", color=color, label=f"{label} MetaRM@k")
    if "curve_expected" in b:
        ye = [100 * b["curve_expected"][str(k)]["score"] for k in ks]
        ax.plot(ks, ye, marker="D", linestyle="--", color=color, label=f"{label} expected scores")
    return color


def _subset_curves(ax: Any, ks: list[int], b: dict[str, Any], color: str) -> None:
    for marker, (s, row) in zip(cycle(SUBSET_MARKERS), b["subsets"].items()):
        ax.plot(
            ks,
            [100 * row[str(k)] for k in ks],
            color=color,
            linewidth=0.9,
            alpha=0.7,
            linestyle=":",
            marker=marker,
            markersize=4,
            label=f"{s} (n={row['n']})",
        )


def _chance_lines(ax: Any, benches: dict[str, Any], colors: dict[str, str]) -> None:
    """A dashed line at each chance level: in the benchmark's colour, grey when several share it."""
    levels: dict[float, list[str]] = {}
    for name, b in benches.items():
        if b.get("chance") is not None:
            levels.setdefault(round(b["chance"], 6), []).append(name)
    for level, names in levels.items():
        color = colors[names[0]] if len(names) == 1 else "gray"
        who = ", ".join(PRETTY.get(n, n) for n in names)
        ax.axhline(
            100 * level, color=color, linestyle="--", linewidth=1, alpha=0.8, label=f"chance {who} ({pct(level)}%)"
        )


def _finish(ax: Any, ks: list[int], title: str) -> bool:
    """Axes, title, grid and legend of one panel; True when its legend went beside it."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples voted, log2)")
    ax.set_ylabel("score (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    entries = len(ax.get_legend_handles_labels()[1])
    if entries > 8:  # a long legend goes beside the panel, not over the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7 if entries > 6 else 8)
    return entries > 8


def write_report(
    results: dict[str, Any], out_dir: str | Path, with_plot: bool = True, per_subset: bool | None = None
) -> list[Path]:
    """results.json + results.md (+ accuracy_vs_k.png, per-subset curves as `plot`) in out_dir;
    returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.md"]
    write_text_atomic(paths[0], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(paths[1], markdown(results))
    if with_plot:
        paths.append(out / "accuracy_vs_k.png")
        plot(results, paths[-1], per_subset=per_subset)
        if has_tokens(results):
            paths.append(out / "accuracy_vs_tokens.png")
            plot_tokens(results, paths[-1])
    return paths


def has_tokens(results: dict[str, Any]) -> bool:
    """Whether the backend reported token counts (the tokens plot needs them on a log axis)."""
    return all(c.get("tokens_per_example", 0) > 0 for b in results["benchmarks"].values() for c in b["curve"].values())


def plot_tokens(results: dict[str, Any], path: Path) -> None:
    """Score versus generated tokens per example (log2 axis): a Voting@k curve per benchmark, each
    point labelled with its k, MetaRM@k beside it when a meta RM was used, chance levels dashed;
    a budget on the x axis reads off the best k."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("the plot needs matplotlib: pip install 'rewardscale[bench]'") from e
    ks = [str(k) for k in results["ks"]]
    benches = results["benchmarks"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {}
    for name, b in benches.items():
        label = PRETTY.get(name, name)
        x = [b["curve"][k]["tokens_per_example"] for k in ks]
        (line,) = ax.plot(x, [100 * b["curve"][k]["score"] for k in ks], marker="o", label=f"{label} Voting@k")
        colors[name] = line.get_color()
        for k, xi, yi in zip(ks, x, [100 * b["curve"][k]["score"] for k in ks]):
            ax.annotate(f"k={k}", (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=7)
        if "curve_metarm" in b:
            ym = [100 * b["curve_metarm"][k]["score"] for k in ks]
            xm = [b["curve_metarm"][k]["tokens_per_example"] for k in ks]
            ax.plot(xm, ym, marker="^", linestyle="-.", color=colors[name], label=f"{label} MetaRM@k")
    _chance_lines(ax, benches, colors)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("generated tokens per example (log2)")
    ax.set_ylabel("score (%)")
    ax.set_ylim(-3, 103)
    model = results.get("meta", {}).get("model", "")
    ax.set_title(
        "Score vs compute from one K=" + str(results["K"]) + " run" + (f": {model}" if model else ""), fontsize=10
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
