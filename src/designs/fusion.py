"""Model fusion of a design's trained arms, evaluated like a single model (and usable as an arm).

For one seed, each member is that seed's run of a member arm. Weighted averaging and stacking are
fitted on the validation split (predicted once with each member's best checkpoint and cached as
predictions_validation.csv) and what they fitted is saved in metrics.json (`fitted`); the soup averages
the members' weights (same architecture required).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from src.designs.evaluation import predict_split, split_predictions, write_run
from src.errors import ConfigError
from src.registry import Registry
from src.run import Run

FUSIONS = Registry("fusion method")
Fused = tuple[np.ndarray, dict[str, Any]]  # test probabilities, and what was fitted on validation (for audit)


@dataclass
class Member:
    """One fused run: its directory and (lazily) its validation / test predictions."""

    run_dir: Path
    cfg: DictConfig

    def predictions(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return split_predictions(self.run_dir, self.cfg, split)


def _stack(members: list[Member], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Member probabilities [members, n, classes] and the shared labels (checked to be the same rows)."""
    outputs = [m.predictions(split) for m in members]
    labels = outputs[0][1]
    if any(len(y) != len(labels) or (y != labels).any() for _, y in outputs):
        raise ConfigError(
            f"Fusion members were evaluated on different {split} rows; fuse arms that share "
            "the data config (same data.* overrides)."
        )
    return np.stack([p for p, _ in outputs]), labels


def fit_weights(val_probs: np.ndarray, val_labels: np.ndarray) -> np.ndarray:
    """Simplex weights minimising validation log-loss (softmax-parametrised, optimised by scipy)."""

    def loss(theta: np.ndarray) -> float:
        return log_loss(val_labels, np.tensordot(softmax(theta), val_probs, axes=1), labels=range(val_probs.shape[2]))

    result = minimize(loss, np.zeros(len(val_probs)), method="Nelder-Mead")
    return softmax(result.x)


@FUSIONS.register("weighted_average")
def weighted_average(members: list[Member]) -> Fused:
    """Test probabilities averaged with weights fitted on validation; the weights per member run."""
    weights = fit_weights(*_stack(members, "validation"))
    fitted = {"weights": {str(m.run_dir): float(w) for m, w in zip(members, weights, strict=True)}}
    return np.tensordot(weights, _stack(members, "test")[0], axes=1), fitted


def vote(probs: np.ndarray) -> np.ndarray:
    """Vote shares of the members' hard predictions; ties go to the higher mean probability."""
    n_classes = probs.shape[2]
    shares = np.eye(n_classes)[probs.argmax(2)].mean(0)
    # A small weight on the mean probability breaks ties without ever overturning a majority.
    return 0.999 * shares + 0.001 * probs.mean(0)


@FUSIONS.register("majority_vote")
def majority_vote(members: list[Member]) -> Fused:
    return vote(_stack(members, "test")[0]), {}


def fit_stacker(val_probs: np.ndarray, val_labels: np.ndarray, seed: int = 0) -> LogisticRegression:
    """A logistic-regression meta-learner on the members' concatenated validation probabilities."""
    features = np.concatenate(list(val_probs), axis=1)
    return LogisticRegression(max_iter=1000, random_state=seed).fit(features, val_labels)


@FUSIONS.register("stacking")
def stacking(members: list[Member]) -> Fused:
    """The stacker's test probabilities; its coefficients per (member run, class probability), intercept."""
    stacker = fit_stacker(*_stack(members, "validation"))
    labels = list(members[0].cfg.data.label_names)
    fitted = {
        "features": [f"{m.run_dir}:prob_{label}" for m in members for label in labels],
        "coef": stacker.coef_.tolist(),
        "intercept": stacker.intercept_.tolist(),
        "classes": stacker.classes_.tolist(),  # a binary stacker has one row of coefficients: for classes[1]
    }
    return stacker.predict_proba(np.concatenate(list(_stack(members, "test")[0]), axis=1)), fitted


def average_weights(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform soup: the element-wise mean of floating-point weights (other buffers from the first)."""
    keys = state_dicts[0].keys()
    if any(sd.keys() != keys or any(sd[k].shape != state_dicts[0][k].shape for k in keys) for sd in state_dicts):
        raise ConfigError("Model soup needs members of the same architecture (same parameter names and shapes).")
    return {
        k: torch.stack([sd[k] for sd in state_dicts]).mean(0)
        if state_dicts[0][k].is_floating_point()
        else state_dicts[0][k]
        for k in keys
    }


@FUSIONS.register("soup")
def soup(members: list[Member]) -> Fused:
    """Test probabilities of one model whose weights are the average of the members' best checkpoints."""
    models = [Run.open(m.run_dir).load_classifier() for m in members]
    souped = models[0]
    souped.load_state_dict(average_weights([m.state_dict() for m in models]))
    probs, _ = predict_split(souped, members[0].cfg, "test")
    return probs, {}


def run_fusion(method: str, members: list[Member], cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fuse, then write the fused test predictions and metrics (with what was fitted) like a single run."""
    started = time.perf_counter()
    fuse: Callable[[list[Member]], Fused] = FUSIONS.get_builder(method)
    probs, fitted = fuse(members)
    labels = members[0].predictions("test")[1]
    return write_run(
        run_dir,
        cfg,
        started,
        (probs, labels),
        {"fusion": method, "members": [str(m.run_dir) for m in members], "fitted": fitted},
    )
