"""Confusion-matrix and ROC figures for the test split, saved as PNG (and logged to W&B by train.py)."""

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from lightning.fabric.utilities.rank_zero import rank_zero_only  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassROC  # noqa: E402


def save_classification_figures(confusion: MulticlassConfusionMatrix, roc: MulticlassROC,
                                label_names: list[str], out_dir: Path) -> dict[str, Path]:
    """Compute (on every rank, the metrics sync) and save the figures (on rank 0 only)."""
    matrix = confusion.compute().cpu()
    fpr, tpr, _ = roc.compute()
    return _plot(matrix, fpr, tpr, label_names, out_dir) or {}


@rank_zero_only
def _plot(matrix, fpr, tpr, label_names: list[str], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for i, j in itertools.product(range(len(label_names)), repeat=2):
        ax.text(j, i, int(matrix[i, j]), ha="center", va="center")
    ax.set(xticks=range(len(label_names)), yticks=range(len(label_names)),
           xticklabels=label_names, yticklabels=label_names, xlabel="predicted", ylabel="true",
           title="Confusion matrix (test)")
    paths = {"confusion_matrix": out_dir / "confusion_matrix.png", "roc": out_dir / "roc.png"}
    fig.tight_layout()
    fig.savefig(paths["confusion_matrix"], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, x, y in zip(label_names, fpr, tpr, strict=True):
        ax.plot(x.cpu(), y.cpu(), label=f"{name} vs rest")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths["roc"], dpi=120)
    plt.close(fig)
    return paths
