"""Class balancing of the train split: one registered function per strategy.

A balancer returns a `Balanced`: the (possibly resampled) train rows, and optionally per-class loss
weights or per-row sampling weights that the datamodule and the classifier pick up.
"""

from dataclasses import dataclass

import numpy as np
from datasets import Dataset, concatenate_datasets
from sklearn.utils import resample
from sklearn.utils.class_weight import compute_class_weight

from src.datamodules.augmentation import SYNTHETIC, Augmenter, augmented_copy
from src.datamodules.sources import label_array
from src.errors import ConfigError, DataError
from src.registry import Registry
from src.seeds import sklearn_state

BALANCERS = Registry("balancing strategy")


@dataclass
class Balanced:
    """Balanced train rows; per-class `class_weights` feed the loss, per-class `sampling_weights` a
    WeightedRandomSampler (a row of class c is drawn with weight sampling_weights[c])."""

    dataset: Dataset
    class_weights: list[float] | None = None
    sampling_weights: list[float] | None = None


def class_counts(dataset: Dataset, num_classes: int) -> list[int]:
    return np.bincount(label_array(dataset), minlength=num_classes).tolist()


def rows_by_class(dataset: Dataset, num_classes: int, strategy: str) -> list[np.ndarray]:
    """Row indices of each class; every class needs at least one training row to be balanced."""
    labels = label_array(dataset)
    rows = [np.flatnonzero(labels == c) for c in range(num_classes)]
    empty = [c for c, r in enumerate(rows) if len(r) == 0]
    if empty:
        raise DataError(f"balancing.strategy={strategy}: class id(s) {empty} have no training rows after "
                        "cleaning and subsetting. Raise data.limit_train or use balancing.strategy=none.")
    return rows


@BALANCERS.register("none")
def no_balancing(dataset: Dataset, num_classes: int, seed: int, augmenter: Augmenter | None) -> Balanced:
    return Balanced(dataset)


@BALANCERS.register("undersample")
def undersample(dataset: Dataset, num_classes: int, seed: int, augmenter: Augmenter | None) -> Balanced:
    """Random under-sampling: every class keeps a random `smallest class count` of its rows."""
    rows = rows_by_class(dataset, num_classes, "undersample")
    size = min(len(r) for r in rows)
    keep = [resample(r, replace=False, n_samples=size, random_state=sklearn_state(seed, "balancing", c))
            for c, r in enumerate(rows)]
    return Balanced(dataset.select(np.sort(np.concatenate(keep))))


def _extra_rows(rows: list[np.ndarray], seed: int) -> np.ndarray:
    """Rows drawn with replacement within each class to fill it up to the largest class count."""
    size = max(len(r) for r in rows)
    extra = [resample(r, replace=True, n_samples=size - len(r), random_state=sklearn_state(seed, "balancing", c))
             for c, r in enumerate(rows) if len(r) < size]
    return np.concatenate(extra) if extra else np.array([], dtype=np.int64)


@BALANCERS.register("oversample")
def oversample(dataset: Dataset, num_classes: int, seed: int, augmenter: Augmenter | None) -> Balanced:
    """Random over-sampling: smaller classes get duplicates of random rows up to the largest class count."""
    extra = _extra_rows(rows_by_class(dataset, num_classes, "oversample"), seed)
    return Balanced(dataset.select(np.concatenate([np.arange(len(dataset)), extra])))


@BALANCERS.register("synthetic")
def synthetic(dataset: Dataset, num_classes: int, seed: int, augmenter: Augmenter | None) -> Balanced:
    """Synthetic minority samples: like oversampling, but each added row is an augmented copy."""
    if augmenter is None or not augmenter.ops:
        raise ConfigError("data.balancing.strategy=synthetic needs augmentation operations: set some "
                          "data.augmentation.ops.<name> above 0 (e.g. data.augmentation.ops.mask=0.15).")
    extra = _extra_rows(rows_by_class(dataset, num_classes, "synthetic"), seed)
    if len(extra) == 0:
        return Balanced(dataset)
    copies = augmented_copy(dataset.select(extra), augmenter, SYNTHETIC)
    return Balanced(concatenate_datasets([dataset, copies]))


@BALANCERS.register("class_weighted_loss")
def class_weighted_loss(dataset: Dataset, num_classes: int, seed: int,
                        augmenter: Augmenter | None) -> Balanced:
    """Rows unchanged; the loss weighs class c by n_rows / (n_classes * n_c) (scikit-learn's 'balanced')."""
    rows_by_class(dataset, num_classes, "class_weighted_loss")
    weights = compute_class_weight("balanced", classes=np.arange(num_classes), y=label_array(dataset))
    return Balanced(dataset, class_weights=weights.tolist())


@BALANCERS.register("weighted_sampler")
def weighted_sampler(dataset: Dataset, num_classes: int, seed: int, augmenter: Augmenter | None) -> Balanced:
    """Rows unchanged; a WeightedRandomSampler draws every class equally often (row weight 1 / n_class)."""
    rows = rows_by_class(dataset, num_classes, "weighted_sampler")
    return Balanced(dataset, sampling_weights=[1.0 / len(r) for r in rows])
