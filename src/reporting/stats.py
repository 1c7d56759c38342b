"""Statistics of a design, from scipy.stats / statsmodels / deepsig / scikit-learn.

Seed-level: mean ± std and a t-distribution 95 % CI per arm; against the control, over seed-paired values: paired
t-test, Wilcoxon signed-rank, exact sign-flip permutation test (each Holm-corrected over the whole family of
arm-vs-control comparisons), Almost Stochastic Order (deepsig, Bonferroni over the family) and Cohen's d_z.
Example-level (the test set): a paired bootstrap CI of the metric difference, clustered by example (all seeds of
an example resampled together), and McNemar's test (accuracy only).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from deepsig import aso
from scipy import stats
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score
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
    # accuracy_score's own value, without its input checks (~4 ms a call, most of a 1,000-resample bootstrap)
    "acc": lambda y, p: float(np.mean(y == p.argmax(1))),
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


# A design's primary test: the one its report calls decisive (`primary_test` in the design YAML).
TESTS = {
    "t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
    "permutation": "exact sign-flip permutation test",
    "aso": "Almost Stochastic Order (eps_min)",
}
P_TESTS = ("t", "wilcoxon", "permutation")  # the tests that give p-values (ASO gives eps_min)
ASO_THRESHOLD = 0.2  # deepsig: eps_min < 0.5 means A is better; it recommends checking eps_min < 0.2
ASO_ITERATIONS = 200  # bootstrap iterations: ~0.3 s per comparison at dt=0.01
ASO_DT = 0.01  # integration step: fine enough for the step quantile functions of a few seeds
DECIMALS = 12  # differences are rounded so that floating-point noise neither breaks ties nor fakes a spread


class SignificanceFloorWarning(UserWarning):
    """The primary test cannot reach significance with this many seeds."""


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of the metric is better (all but the loss)."""
    return metric.rsplit("/", 1)[-1] != "loss"


def paired_differences(arm: Sequence[float], control: Sequence[float]) -> np.ndarray:
    """Seed-paired arm - control, rounded to DECIMALS so equal differences compare equal."""
    return np.round(np.asarray(arm, dtype=float) - np.asarray(control, dtype=float), DECIMALS)


def permutation_p(diff: np.ndarray) -> float:
    """Two-sided sign-flip permutation p of the mean difference: exact for up to 13 seeds (2^n <= 9999 flips)."""
    if len(diff) < 2 or not diff.any():
        return 1.0
    return float(
        stats.permutation_test((diff,), np.mean, permutation_type="samples", rng=np.random.default_rng(0)).pvalue
    )


def t_p(diff: np.ndarray) -> float:
    """Paired t-test p; 1 when all differences are zero; the permutation p when they are a constant shift.

    A constant non-zero shift has zero variance, so t is infinite and scipy's p is 0 (or noise): we use the exact
    sign-flip permutation p instead, i.e. the smallest p the seeds can give (2/2^n), not an impossible 0."""
    if len(diff) < 2 or not diff.any():
        return 1.0
    if np.ptp(diff) == 0:
        return permutation_p(diff)
    return float(stats.ttest_1samp(diff, 0.0).pvalue)


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p (scipy: exact, or all sign flips with ties/zeros); 1 when all are zero."""
    if len(diff) < 2 or not diff.any():
        return 1.0
    return float(stats.wilcoxon(diff).pvalue)


def paired_tests(arm: Sequence[float], control: Sequence[float]) -> dict[str, float]:
    """Mean difference, Cohen's d_z and the p of each test over seed-paired values (undefined p -> 1.0)."""
    diff = paired_differences(arm, control)
    spread = diff.std(ddof=1) if len(diff) > 1 else 0.0
    return {
        "diff_mean": float(diff.mean()) if len(diff) else math.nan,
        "cohens_d": float(diff.mean() / spread) if spread > 0 else math.nan,  # d_z: no library function
        "t_p": t_p(diff),
        "wilcoxon_p": wilcoxon_p(diff),
        "permutation_p": permutation_p(diff),
    }


def aso_eps_min(
    arm: Sequence[float],
    control: Sequence[float],
    family_size: int = 1,
    alpha: float = 0.05,
    higher: bool = True,
    seed: int = 0,
) -> float:
    """deepsig's ASO eps_min of arm over control (small: arm stochastically dominant); NaN below two seeds.

    Confidence 1 - alpha, Bonferroni over the family; seeded, and numpy's global generator (which deepsig
    reseeds) is restored, so a report is reproducible byte for byte."""
    if min(len(arm), len(control)) < 2:
        return math.nan
    sign = 1.0 if higher else -1.0
    state = np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Division by zero")  # bootstrap draws of identical scores
            warnings.filterwarnings("ignore", message="'confidence_level' was refactored")  # alpha > 0.05
            eps = aso(
                sign * np.asarray(arm, dtype=float),
                sign * np.asarray(control, dtype=float),
                confidence_level=1 - alpha,
                num_comparisons=family_size,
                num_bootstrap_iterations=ASO_ITERATIONS,
                dt=ASO_DT,
                seed=seed,
                show_progress=False,
                num_jobs=1,
            )
    finally:
        np.random.set_state(state)
    return float(eps)


def pooled_difference(labels: np.ndarray, probs_arm: np.ndarray, probs_control: np.ndarray, metric: str,
                      index: np.ndarray | None = None) -> float:
    """metric(arm) - metric(control) on every seed's rows pooled (of the examples `index`; all when None): labels
    [seeds, examples], probabilities [seeds, examples, classes]."""
    fn, index = metric_fn(metric), np.arange(labels.shape[1]) if index is None else index
    rows = labels[:, index].ravel()
    arm, control = (probs[:, index].reshape(len(rows), -1) for probs in (probs_arm, probs_control))
    return fn(rows, arm) - fn(rows, control)


def bootstrap_difference(
    labels: np.ndarray,
    probs_arm: np.ndarray,
    probs_control: np.ndarray,
    metric: str,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The pooled difference and its 95 % percentile-bootstrap CI clustered by example: every seed holds the
    same test examples in the same order, and a resample draws examples, each with all its seeds of both arms."""
    metric_fn(metric)  # an unknown metric fails before any resample

    def difference(index: np.ndarray) -> float:
        return pooled_difference(labels, probs_arm, probs_control, metric, index)

    return _bootstrap(difference, labels.shape[1], n_resamples, seed)


def bootstrap_metric(labels: np.ndarray, probs: np.ndarray, metric: str, n_resamples: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """metric on all examples and its 95 % percentile-bootstrap CI over examples."""
    fn = metric_fn(metric)
    return _bootstrap(lambda index: fn(labels[index], probs[index]), len(labels), n_resamples, seed)


def _bootstrap(statistic: Callable[[np.ndarray], float], n: int, n_resamples: int,
               seed: int) -> tuple[float, float, float]:
    """statistic(all example indices) and its 95 % percentile-bootstrap CI (examples resampled)."""
    result = stats.bootstrap(
        (np.arange(n),),
        statistic,
        vectorized=False,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(statistic(np.arange(n))), float(low), float(high)


def is_accuracy(metric: str) -> bool:
    """Whether a metric is accuracy: McNemar's test compares correct/wrong, so it tests accuracy and nothing else."""
    return metric.rsplit("/", 1)[-1] == "acc"


def mcnemar_test(labels: np.ndarray, pred_arm: np.ndarray, pred_control: np.ndarray) -> float:
    """McNemar's p-value on the 2x2 table of correct/wrong (exact binomial when discordant pairs < 25)."""
    right_a, right_c = pred_arm == labels, pred_control == labels
    table = [
        [np.sum(right_a & right_c), np.sum(right_a & ~right_c)],
        [np.sum(~right_a & right_c), np.sum(~right_a & ~right_c)],
    ]
    discordant = table[0][1] + table[1][0]
    return float(mcnemar(table, exact=discordant < 25, correction=True).pvalue)


def holm(pvalues: Sequence[float], family_size: int | None = None) -> list[float]:
    """statsmodels' Holm-adjusted p over the whole family: undefined (NaN) p and planned comparisons not yet run
    (family_size > len(pvalues)) count as p = 1, so m is always the number of planned comparisons."""
    p = np.nan_to_num(np.asarray(pvalues, dtype=float), nan=1.0)
    padded = np.concatenate([p, np.ones(max((family_size or 0) - len(p), 0))])
    return multipletests(padded, method="holm")[1][: len(p)].tolist() if len(padded) else []


def min_attainable_p(test: str, n: int) -> float:
    """Smallest p that n paired seeds can give: 2/2^n for the exact sign-flip tests (Wilcoxon, permutation),
    0 for the t-test (no floor; 1 below two seeds), NaN for ASO (eps_min is not a p-value)."""
    if test == "t":
        return 0.0 if n >= 2 else 1.0
    if test in ("wilcoxon", "permutation"):
        return min(1.0, 2.0 / 2**n)
    return math.nan


def seeds_needed(test: str, alpha: float, family_size: int) -> int:
    """Fewest seeds whose smallest attainable p passes Holm's first step (m * p <= alpha)."""
    return next(n for n in itertools.count(1) if family_size * min_attainable_p(test, n) <= alpha)


def significance_floor(test: str, n: int, alpha: float, family_size: int) -> str:
    """A WARNING line, also issued through `warnings`, when no comparison can be significant with n seeds."""
    floor = min_attainable_p(test, n)
    if math.isnan(floor) or family_size * floor <= alpha:
        return ""
    message = (
        f"WARNING: with {n} seeds the smallest attainable {TESTS[test]} p is {floor:.3g}; Holm over m={family_size} "
        f"comparisons needs m * p <= alpha = {alpha:g}, so no arm can be significant. "
        f"Use at least {seeds_needed(test, alpha, family_size)} seeds."
    )
    warnings.warn(message, SignificanceFloorWarning, stacklevel=2)
    return message
