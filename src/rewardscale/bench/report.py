"""Bench report: results.json, results.md (markdown tables) and accuracy_vs_k.png in one folder.
All files are written atomically."""

from __future__ import annotations

import json
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
    "generic": "generic",
}


def pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """Markdown tables: per benchmark and Overall at each k (with 95% CI), per subset, baselines,
    parse failures and position bias."""
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
    lines += ["| benchmark | n | " + " | ".join(f"Voting@{k}" for k in ks) + " |"]
    lines += ["|---|---:|" + "---:|" * len(ks)]
    for name, b in results["benchmarks"].items():
        cells = [
            f"{pct(b['curve'][k]['score'])} [{pct(b['curve'][k]['ci'][0])}, {pct(b['curve'][k]['ci'][1])}]" for k in ks
        ]
        lines.append(f"| {PRETTY.get(name, name)} | {b['n_examples']} | " + " | ".join(cells) + " |")
    if "overall" in results:
        o = results["overall"]
        lines.append(
            f"| **Overall** ({', '.join(o['members'])}) | | " + " | ".join(pct(o["curve"][k]) for k in ks) + " |"
        )
    lines += [
        "",
        "Scores in %, ties counted 1/#tied (expected accuracy); [95% bootstrap interval over examples]. "
        "Voting@k for k < K is the average over all (or, when too many, random) k-subsets of the K samples.",
    ]
    if results.get("metarm"):
        lines += ["", *metarm_markdown(results)]
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
    lines += ["", "## Per subset", "", "| benchmark | subset | n | " + " | ".join(f"@{k}" for k in ks) + " |"]
    lines += ["|---|---|---:|" + "---:|" * len(ks)]
    for name, b in results["benchmarks"].items():
        for s, row in b["subsets"].items():
            lines.append(
                f"| {PRETTY.get(name, name)} | {s} | {row['n']} | " + " | ".join(pct(row.get(k)) for k in ks) + " |"
            )
    lines += [
        "",
        "## Parse failures and position bias",
        "",
        "| benchmark | samples | abstained (no valid verdict after retries) | failed first try | "
        "first-shown wins | chance | first/chance | ties |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b in results["benchmarks"].items():
        p, pb = b["parse"], b["position_bias"]
        ratio = pb.get("first_over_chance")
        lines.append(
            f"| {PRETTY.get(name, name)} | {p.get('samples', 0)} | {pct(p.get('abstained_rate'))}% | "
            f"{pct(p.get('first_try_failure_rate'))}% | {pct(pb.get('first_wins'))}% | {pct(pb.get('chance'))}% | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {pct(pb.get('ties_rate'))}% |"
        )
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
        cells = [f"{pct(c[k]['score'])} [{pct(c[k]['ci'][0])}, {pct(c[k]['ci'][1])}]" for k in ks if k in c]
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


def plot(results: dict[str, Any], path: Path) -> None:
    """Score versus k (log2 axis) per benchmark with its 95% band; Overall dashed; baselines as
    horizontal dotted lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("the plot needs matplotlib: pip install 'rewardscale[bench]'") from e
    ks = results["ks"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, b in results["benchmarks"].items():
        y = [100 * b["curve"][str(k)]["score"] for k in ks]
        lo = [100 * b["curve"][str(k)]["ci"][0] for k in ks]
        hi = [100 * b["curve"][str(k)]["ci"][1] for k in ks]
        (line,) = ax.plot(ks, y, marker="o", label=f"{PRETTY.get(name, name)} (n={b['n_examples']})")
        ax.fill_between(ks, lo, hi, alpha=0.15, color=line.get_color())
        if "curve_metarm" in b:
            ym = [100 * b["curve_metarm"][str(k)]["score"] for k in ks]
            ax.plot(
                ks, ym, marker="^", linestyle="-.", color=line.get_color(), label=f"{PRETTY.get(name, name)} MetaRM@k"
            )
    if "overall" in results:
        ax.plot(ks, [100 * results["overall"]["curve"][str(k)] for k in ks], "k--", marker="s", label="Overall")
        if "curve_metarm" in results["overall"]:
            ym = [100 * results["overall"]["curve_metarm"][str(k)] for k in ks]
            ax.plot(ks, ym, "k-.", marker="^", label="Overall MetaRM@k")
    for bl in results.get("baselines", []):
        for name, r in bl["benchmarks"].items():
            ax.axhline(100 * r["score"], linestyle=":", color="gray")
            ax.annotate(f"{bl['name']} ({PRETTY.get(name, name)})", (ks[0], 100 * r["score"]), fontsize=7, va="bottom")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples voted, log2)")
    ax.set_ylabel("score (%)")
    model = results.get("meta", {}).get("model", "")
    what = "Voting@k and MetaRM@k" if results.get("metarm") else "Voting@k"
    title = f"{what} from one K={results['K']} run" + (f": {model}" if model else "")
    if results.get("partial"):
        title += f" (partial: {results['partial']['examples_complete']}/{results['partial']['examples_total']})"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def write_report(results: dict[str, Any], out_dir: str | Path, with_plot: bool = True) -> list[Path]:
    """results.json + results.md (+ accuracy_vs_k.png) in out_dir; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.md"]
    write_text_atomic(paths[0], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(paths[1], markdown(results))
    if with_plot:
        paths.append(out / "accuracy_vs_k.png")
        plot(results, paths[-1])
    return paths
