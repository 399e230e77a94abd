"""Benchmark scores from per-example accuracies: official weightings, ROC-AUC, bootstrap CIs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# RewardBench sections (official leaderboard); each section is the example-weighted accuracy of
# its subsets, Reasoning weights math-prm equally with the code subsets together, and the score
# is the mean of the sections (plus prior sets at half weight when they are included).
REWARDBENCH_SECTIONS: dict[str, tuple[str, ...]] = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "Chat Hard": (
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ),
    "Safety": (
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
REWARDBENCH_PRIOR = (
    "anthropic_helpful",
    "anthropic_harmless",
    "anthropic_hhh",
    "mtbench_gpt4",
    "mtbench_human",
    "shp",
    "summarize",
)


def rewardbench_sections(acc: np.ndarray, subsets: Sequence[str]) -> dict[str, float]:
    """Section scores and the total ('Score') from per-example accuracies and their subsets.
    Subsets outside the official lists form their own section 'Other' (fixtures, custom data)."""
    subsets = np.asarray(subsets)
    out: dict[str, float] = {}
    known = set()
    for section, names in REWARDBENCH_SECTIONS.items():
        known.update(names)
        mask = np.isin(subsets, names)
        if not mask.any():
            continue
        if section == "Reasoning" and (subsets == "math-prm").any() and (mask & (subsets != "math-prm")).any():
            math = acc[subsets == "math-prm"].mean()
            code = acc[mask & (subsets != "math-prm")].mean()
            out[section] = float((math + code) / 2)
        else:
            out[section] = float(acc[mask].mean())
    prior_mask = np.isin(subsets, REWARDBENCH_PRIOR)
    known.update(REWARDBENCH_PRIOR)
    other = ~np.isin(subsets, list(known))
    if other.any():
        out["Other"] = float(acc[other].mean())
    weights = dict.fromkeys(out, 1.0)
    if prior_mask.any():
        out["Prior Sets"] = float(acc[prior_mask].mean())
        weights["Prior Sets"] = 0.5
    out["Score"] = sum(out[s] * w for s, w in weights.items()) / sum(weights.values())
    return out


def mean_of_subsets(acc: np.ndarray, subsets: Sequence[str]) -> float:
    """Unweighted mean of per-subset accuracies (RewardBench 2's headline score)."""
    subsets = np.asarray(subsets)
    return float(np.mean([acc[subsets == s].mean() for s in dict.fromkeys(subsets.tolist())]))


def mean_accuracy(acc: np.ndarray, subsets: Sequence[str]) -> float:
    return float(np.mean(acc))


def rmb_score(acc: np.ndarray, subsets: Sequence[str]) -> float:
    """RMB: mean of pairwise accuracy and best-of-N accuracy (over whichever are present)."""
    names = np.asarray(subsets).astype(str)
    parts = [acc[m].mean() for m in (np.char.startswith(names, p) for p in ("pair/", "bon/")) if m.any()]
    return float(np.mean(parts)) if parts else float(np.mean(acc))


# RM-Bench groups its domains by prefix (safety-refuse and safety-response are one 'Safety').
RM_BENCH_DOMAINS = ("chat", "math", "code", "safety")
RM_BENCH_LEVELS = ("easy", "normal", "hard")


def rm_bench_group(domain: str) -> str:
    """Chat | Math | Code | Safety for an RM-Bench domain (by prefix, as RM-Bench's script);
    any other domain is its own group."""
    for d in RM_BENCH_DOMAINS:
        if domain.startswith(d):
            return d.capitalize()
    return domain


def rm_bench_sections(acc: np.ndarray, subsets: Sequence[str]) -> dict[str, float]:
    """RM-Bench's scores from per-pair accuracies and their `domain/level` subsets: per domain
    group the mean of its easy, normal and hard accuracies; Easy, Normal and Hard the means of
    the groups' levels; Score (RM-Bench's 'total_avg_acc') the mean of the groups."""
    acc = np.asarray(acc, dtype=float)
    names, inverse = np.unique(np.asarray(subsets, dtype=str), return_inverse=True)  # few names, many pairs
    split = [str(n).rsplit("/", 1) for n in names]
    groups = np.array([rm_bench_group(d) for d, _ in split], dtype=object)[inverse]
    levels = np.array([lv for _, lv in split], dtype=object)[inverse]
    per_group: dict[str, dict[str, float]] = {}
    for g in dict.fromkeys(groups.tolist()):
        in_g = groups == g
        per_group[g] = {
            lv: float(acc[in_g & (levels == lv)].mean()) for lv in RM_BENCH_LEVELS if (in_g & (levels == lv)).any()
        }
    out = {g: float(np.mean(list(v.values()))) for g, v in per_group.items()}
    for lv in RM_BENCH_LEVELS:
        vals = [v[lv] for v in per_group.values() if lv in v]
        if vals:
            out[lv.capitalize()] = float(np.mean(vals))
    out["Score"] = float(np.mean([out[g] for g in per_group])) if per_group else float("nan")
    return out


def style_matrix(acc: np.ndarray, styles: Sequence[tuple[int, int]], size: int = 3) -> np.ndarray:
    """RM-Bench's (size x size) matrix: cell [i, j] is the mean accuracy of the pairs of chosen
    style i against rejected style j (NaN for an empty cell)."""
    acc = np.asarray(acc, dtype=float)
    m = np.full((size, size), np.nan)
    cells = np.array(styles, dtype=int).reshape(-1, 2)
    for i in range(size):
        for j in range(size):
            mask = (cells[:, 0] == i) & (cells[:, 1] == j)
            if mask.any():
                m[i, j] = acc[mask].mean()
    return m


def style_levels(matrix: np.ndarray) -> dict[str, float]:
    """easy / normal / hard from an RM-Bench style matrix: the mean of its lower-left triangle
    (chosen fancier than rejected), its diagonal, and its upper-right triangle (chosen plainer)."""
    m = np.asarray(matrix, dtype=float)
    lower = np.tril_indices_from(m, -1)
    upper = np.triu_indices_from(m, 1)
    return {"easy": float(np.mean(m[lower])), "normal": float(np.mean(np.diag(m))), "hard": float(np.mean(m[upper]))}


SCORERS: dict[str, Callable[[np.ndarray, Sequence[str]], float]] = {
    "rewardbench": lambda a, s: rewardbench_sections(a, s)["Score"],
    "rewardbench2": mean_of_subsets,
    "ppe-preference": mean_accuracy,
    "ppe-correctness": mean_accuracy,
    "rmb": rmb_score,
    "rm-bench": lambda a, s: rm_bench_sections(a, s)["Score"],
    "judgebench": mean_accuracy,
    "generic": mean_accuracy,
}

# The paper's Overall: mean of these four (whichever were run).
OVERALL_MEMBERS = ("rewardbench", "ppe-preference", "ppe-correctness", "rmb")


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC of `scores` for the positive class (Mann-Whitney, ties count 1/2). NaN scores
    (no valid sample) are read as the neutral midpoint 5.5. NaN when one class is absent."""
    scores = np.where(np.isnan(scores), 5.5, scores)
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def bootstrap_ci(
    stat: Callable[[np.ndarray], float], n: int, seed: int = 0, resamples: int = 1000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat(indices)` over examples resampled with replacement."""
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(resamples)])
    values = values[~np.isnan(values)]
    if not len(values):
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
