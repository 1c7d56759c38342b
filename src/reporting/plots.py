"""Design plots (PNG): per-arm metric with CI, learning curves, overlaid ROC curves, confusion matrices."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay, confusion_matrix  # noqa: E402
from sklearn.preprocessing import label_binarize  # noqa: E402

from src.reporting.results import Results, arm_table  # noqa: E402


def metric_ci(results: Results, metric: str | None = None) -> Figure:
    """Mean and 95 % CI of one metric per arm, with each seed's value as a dot; control in red."""
    metric = metric or results.metric
    table = arm_table(results, (metric,)).set_index("arm")
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(table) + 2), 3.8))
    for x, (arm, row) in enumerate(table.iterrows()):
        color = "tab:red" if arm == results.control else "tab:blue"
        error = np.array([[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]])
        ax.errorbar(
            x,
            row["mean"],
            yerr=None if np.isnan(error).any() else error,
            fmt="o",
            color=color,
            capsize=5,
            markersize=7,
        )
        seeds = results.values(arm, metric)
        ax.scatter(np.full(len(seeds), x + 0.15), seeds, s=12, color=color, alpha=0.5)
    ax.set_xticks(range(len(table)), table.index, rotation=30, ha="right")
    ax.set(ylabel=metric, title=f"{metric}: mean and 95% CI over seeds (control red)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def learning_curves(results: Results) -> Figure:
    """Training loss and validation F1 against the step, one colour per arm (runs' csv/metrics.csv)."""
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = dict(zip(results.arms, plt.cm.tab10.colors * 3, strict=False))
    for row in results.runs.itertuples():
        log = results.training_log(row.run_dir)
        if log is None:
            continue  # baselines and fusions have no training curve
        label = row.arm if row.seed == results.runs[results.runs["arm"] == row.arm]["seed"].min() else None
        for ax, column in ((ax_loss, "train/loss"), (ax_val, "val/f1_macro")):
            if column in log:
                points = log[["step", column]].dropna()
                ax.plot(
                    points["step"],
                    points[column],
                    color=colors[row.arm],
                    alpha=0.7,
                    label=label,
                    marker="o" if column.startswith("val") else None,
                    markersize=3,
                )
    ax_loss.set(xlabel="step", ylabel="train/loss", title="Training loss")
    ax_val.set(xlabel="step", ylabel="val/f1_macro", title="Validation macro-F1")
    if ax_val.get_legend_handles_labels()[0]:
        ax_val.legend(fontsize=8)
    else:
        ax_val.text(0.5, 0.5, "no training runs", ha="center", transform=ax_val.transAxes)
    fig.tight_layout()
    return fig


def roc_curves(results: Results) -> Figure:
    """One ROC curve per arm on its pooled test predictions over seeds (micro-average when multi-class)."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for arm in results.arms:
        preds = results.predictions(arm).values()
        probs = np.concatenate([p for p, _ in preds])
        labels = np.concatenate([y for _, y in preds])
        if probs.shape[1] == 2:
            RocCurveDisplay.from_predictions(labels, probs[:, 1], name=arm, ax=ax, plot_chance_level=False)
        else:
            onehot = label_binarize(labels, classes=range(probs.shape[1]))
            RocCurveDisplay.from_predictions(onehot.ravel(), probs.ravel(), name=f"{arm} (micro)", ax=ax)
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_title(f"{results.name}: ROC (test, pooled over seeds)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def confusion_matrices(results: Results) -> Figure:
    """One confusion matrix per arm, summed over seeds."""
    arms = results.arms
    cols = min(4, len(arms))
    rows = -(-len(arms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(arms) :]:
        ax.set_visible(False)
    for ax, arm in zip(axes.flat, arms, strict=False):
        preds = list(results.predictions(arm).values())
        n_classes = preds[0][0].shape[1]
        matrix = sum(confusion_matrix(y, p.argmax(1), labels=range(n_classes)) for p, y in preds)
        ConfusionMatrixDisplay(matrix, display_labels=results.label_names).plot(ax=ax, colorbar=False, cmap="Blues")
        ax.set_title(arm, fontsize=9)
    fig.tight_layout()
    return fig


PLOTS = {
    "metric_ci": metric_ci,
    "learning_curves": learning_curves,
    "roc": roc_curves,
    "confusion_matrices": confusion_matrices,
}


def save_plots(results: Results, out_dir: Path) -> dict[str, Path]:
    """Every plot as out_dir/<name>.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, draw in PLOTS.items():
        fig = draw(results)
        paths[name] = out_dir / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    return paths
