"""Statistics of a design, all from scipy.stats / scikit-learn / statsmodels.

Seed-level: mean ± std and a t-distribution 95 % CI per arm; paired t-test, Wilcoxon signed-rank and
Cohen's d (paired, d_z) of each arm against the control; Holm correction across arms.
Example-level (the test set): a paired bootstrap CI of the metric difference and McNemar's test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from src.errors import ConfigError

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _auroc(labels: np.ndarray, probs: np.ndarray) -> float:
    if probs.shape[1] == 2:
        return roc_auc_score(labels, probs[:, 1])
    return roc_auc_score(labels, probs, multi_class="ovr", labels=range(probs.shape[1]))


# scikit-learn equivalents of the logged torchmetrics metrics, on (labels, probabilities).
METRIC_FNS: dict[str, MetricFn] = {
    "acc": lambda y, p: accuracy_score(y, p.argmax(1)),
    "f1_macro": lambda y, p: f1_score(y, p.argmax(1), average="macro", labels=range(p.shape[1]), zero_division=0),
    "precision": lambda y, p: precision_score(
        y, p.argmax(1), average="macro", labels=range(p.shape[1]), zero_division=0
    ),
    "recall": lambda y, p: recall_score(y, p.argmax(1), average="macro", labels=range(p.shape[1]), zero_division=0),
    "auroc": _auroc,
    "loss": lambda y, p: log_loss(y, p, labels=range(p.shape[1])),
}


def metric_fn(metric: str) -> MetricFn:
    """The example-level function of a metric name such as `test/f1_macro`."""
    short = metric.rsplit("/", 1)[-1]
    if short not in METRIC_FNS:
        raise ConfigError(
            f"No example-level function for metric '{metric}'. Use one of {', '.join('test/' + k for k in METRIC_FNS)}."
        )
    return METRIC_FNS[short]


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """n, mean, std (ddof=1) and the t-distribution confidence interval of the mean over seeds."""
    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(x.mean())
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(x)) if std > 0 else (mean, mean)
    return {"n": n, "mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high)}


def paired_tests(arm: Sequence[float], control: Sequence[float]) -> dict[str, float]:
    """Mean difference, paired t-test and Wilcoxon p-values, and Cohen's d_z over seed-paired values."""
    diff = np.asarray(arm, dtype=float) - np.asarray(control, dtype=float)
    out = {
        "diff_mean": float(diff.mean()) if len(diff) else math.nan,
        "t_p": math.nan,
        "wilcoxon_p": math.nan,
        "cohens_d": math.nan,
    }
    if len(diff) < 2:
        return out
    if diff.std(ddof=1) > 0:
        out["t_p"] = float(stats.ttest_rel(arm, control).pvalue)
        out["cohens_d"] = float(diff.mean() / diff.std(ddof=1))  # d_z: no library function; one line
    if np.any(diff != 0):
        out["wilcoxon_p"] = float(stats.wilcoxon(arm, control).pvalue)
    return out


def bootstrap_difference(
    labels: np.ndarray,
    probs_arm: np.ndarray,
    probs_control: np.ndarray,
    metric: str,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """metric(arm) - metric(control) on all examples and its 95 % percentile-bootstrap CI (paired)."""
    fn = metric_fn(metric)

    def difference(index: np.ndarray) -> float:
        return fn(labels[index], probs_arm[index]) - fn(labels[index], probs_control[index])

    result = stats.bootstrap(
        (np.arange(len(labels)),),
        difference,
        vectorized=False,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(difference(np.arange(len(labels)))), float(low), float(high)


def mcnemar_test(labels: np.ndarray, pred_arm: np.ndarray, pred_control: np.ndarray) -> float:
    """McNemar's p-value on the 2x2 table of correct/wrong (exact binomial when discordant pairs < 25)."""
    right_a, right_c = pred_arm == labels, pred_control == labels
    table = [
        [np.sum(right_a & right_c), np.sum(right_a & ~right_c)],
        [np.sum(~right_a & right_c), np.sum(~right_a & ~right_c)],
    ]
    discordant = table[0][1] + table[1][0]
    return float(mcnemar(table, exact=discordant < 25, correction=True).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (NaN entries stay NaN and do not count as tests)."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return adjusted.tolist()
