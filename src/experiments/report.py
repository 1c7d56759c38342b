"""Write a design's report: runs.csv, arms.csv, comparisons.csv, summary.md and the PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from src.experiments.plots import save_plots
from src.experiments.results import Results, arm_table, compare_to_control, load_results


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"


def metrics_markdown(arms: pd.DataFrame) -> str:
    """Arms x metrics, each cell `mean ± std` over seeds (n seeds in the first column)."""
    cells = []
    for r in arms.itertuples():
        digits = 1 if r.metric == "duration_s" else 4
        cells.append(f"{_fmt(r.mean, digits)} ± {_fmt(r.std, digits)}")
    wide = arms.assign(cell=cells)
    table = wide.pivot(index="arm", columns="metric", values="cell").reindex(
        index=arms["arm"].unique(), columns=arms["metric"].unique()
    )
    counts = arms.groupby("arm")["n"].first()
    lines = ["| arm | n | " + " | ".join(table.columns) + " |", "|---|---:|" + "---:|" * len(table.columns)]
    lines += [f"| {arm} | {counts[arm]} | " + " | ".join(row) + " |" for arm, row in table.iterrows()]
    return "\n".join(lines)


def comparison_markdown(results: Results, arms: pd.DataFrame, comparisons: pd.DataFrame) -> str:
    """Primary metric per arm with its 95 % CI, and every test against the control."""
    if results.control not in results.arms:
        return f"The control arm `{results.control}` has no finished run yet: no comparison."
    primary = arms[arms["metric"] == results.metric].set_index("arm")
    head = (
        "| arm | mean [95% CI] | mean Δ vs control | pooled Δ [bootstrap 95% CI] | paired t p | Holm p "
        "| Wilcoxon p | Cohen's d | McNemar p (per seed) |"
    )
    lines = [head, "|---|---|---:|---|---:|---:|---:|---:|---|"]
    control = primary.loc[results.control]
    lines.append(
        f"| **{results.control}** (control) | {_fmt(control['mean'])} "
        f"[{_fmt(control['ci_low'])}, {_fmt(control['ci_high'])}] | | | | | | | |"
    )
    for row in comparisons.itertuples():
        arm = primary.loc[row.arm]
        lines.append(
            f"| {row.arm} | {_fmt(arm['mean'])} [{_fmt(arm['ci_low'])}, {_fmt(arm['ci_high'])}] "
            f"| {row.diff_mean:+.4f} | {_fmt(row.pooled_diff)} [{_fmt(row.boot_low)}, {_fmt(row.boot_high)}] "
            f"| {_p(row.t_p)} | {_p(row.t_p_holm)} | {_p(row.wilcoxon_p)} | {_fmt(row.cohens_d, 2)} "
            f"| {row.mcnemar_p} |"
        )
    return "\n".join(lines)


def write_report(results_dir: str | Path, n_resamples: int = 1000) -> dict[str, Path]:
    """Collect the finished runs and write every table and plot into results_dir."""
    results = load_results(results_dir)
    out = results.dir
    arms = arm_table(results)
    comparisons = compare_to_control(results, n_resamples)
    results.runs.to_csv(out / "runs.csv", index=False)
    arms.to_csv(out / "arms.csv", index=False)
    comparisons.to_csv(out / "comparisons.csv", index=False)
    plots = save_plots(results, out / "plots")
    seeds = sorted(int(s) for s in results.runs["seed"].unique())
    text = [
        f"# Design `{results.name}`",
        "",
        results.record.get("description", "").strip(),
        "",
        f"Control arm: `{results.control}`. Primary metric: `{results.metric}`. Seeds: {seeds}. "
        f"Runs: {len(results.runs)}.",
        "",
        "## Metrics (mean ± std over seeds)",
        "",
        metrics_markdown(arms),
        "",
        f"## `{results.metric}` against the control",
        "",
        comparison_markdown(results, arms, comparisons),
        "",
        "Paired t-test and Wilcoxon signed-rank across seeds (Holm-corrected across arms); Cohen's d = "
        "mean/std of the seed-paired differences; pooled Δ = the metric on all seeds' test predictions "
        "pooled, with a paired bootstrap CI over those examples; "
        "McNemar on each seed's test predictions.",
        "",
        "## Plots",
        "",
    ]
    text += [f"![{name}](plots/{path.name})" for name, path in plots.items()]
    (out / "summary.md").write_text("\n".join(text) + "\n")
    return {"runs": out / "runs.csv", "summary": out / "summary.md", **plots}
