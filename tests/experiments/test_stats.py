"""Design statistics against scipy / statsmodels on fixed numbers."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from src.errors import ConfigError
from src.experiments import stats

ARM = [0.81, 0.84, 0.80, 0.86, 0.83]
CONTROL = [0.79, 0.80, 0.81, 0.82, 0.80]


def test_seed_summary_is_the_t_interval() -> None:
    summary = stats.seed_summary(ARM)
    low, high = sps.t.interval(0.95, 4, loc=np.mean(ARM), scale=sps.sem(ARM))
    assert summary["mean"] == pytest.approx(0.828)
    assert summary["std"] == pytest.approx(np.std(ARM, ddof=1))
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    # The same CI as the t-test's own confidence interval of the mean.
    ci = sps.ttest_1samp(ARM, 0).confidence_interval()
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_single_seed_has_no_spread() -> None:
    summary = stats.seed_summary([0.9])
    assert summary["mean"] == 0.9 and math.isnan(summary["std"]) and math.isnan(summary["ci_low"])


def test_paired_tests_match_scipy() -> None:
    result = stats.paired_tests(ARM, CONTROL)
    diff = np.subtract(ARM, CONTROL)
    assert result["diff_mean"] == pytest.approx(diff.mean())
    assert result["t_p"] == pytest.approx(sps.ttest_rel(ARM, CONTROL).pvalue)
    assert result["wilcoxon_p"] == pytest.approx(sps.wilcoxon(ARM, CONTROL).pvalue)
    assert result["cohens_d"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    # By hand: differences mean 0.024, sd 0.020736, t = 0.024 / (0.020736 / sqrt 5) = 2.588 on 4 df.
    assert result["t_p"] == pytest.approx(2 * sps.t.sf(2.588, 4), abs=1e-4)
    assert result["cohens_d"] == pytest.approx(1.1574, abs=1e-3)


def test_identical_arms_give_no_p_value() -> None:
    result = stats.paired_tests(CONTROL, CONTROL)
    assert result["diff_mean"] == 0 and math.isnan(result["t_p"]) and math.isnan(result["wilcoxon_p"])


def test_holm_matches_statsmodels_order_and_skips_nan() -> None:
    adjusted = stats.holm([0.01, 0.04, float("nan"), 0.03])
    # Holm on the three finite p-values: sorted 0.01*3, max(0.03*2, 0.03), max(0.04*1, 0.06).
    assert adjusted[0] == pytest.approx(0.03)
    assert adjusted[3] == pytest.approx(0.06)
    assert adjusted[1] == pytest.approx(0.06)
    assert math.isnan(adjusted[2])


def test_mcnemar_exact_is_the_binomial_test() -> None:
    labels = np.zeros(40, dtype=int)
    pred_a = np.zeros(40, dtype=int)
    pred_c = np.zeros(40, dtype=int)
    pred_a[:3] = 1  # a wrong, c right: 3
    pred_c[3:12] = 1  # a right, c wrong: 9
    expected = sps.binomtest(3, 12, 0.5).pvalue
    assert stats.mcnemar_test(labels, pred_a, pred_c) == pytest.approx(expected)


def test_mcnemar_large_uses_corrected_chi_square() -> None:
    labels = np.zeros(200, dtype=int)
    pred_a, pred_c = labels.copy(), labels.copy()
    pred_a[:20] = 1
    pred_c[20:60] = 1
    b, c = 40, 20
    expected = sps.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1)
    assert stats.mcnemar_test(labels, pred_a, pred_c) == pytest.approx(expected)


def test_bootstrap_difference_brackets_the_observed_difference() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    good = np.where(rng.random(300) < 0.9, labels, 1 - labels)
    poor = np.where(rng.random(300) < 0.7, labels, 1 - labels)
    probs_good, probs_poor = np.eye(2)[good], np.eye(2)[poor]
    diff, low, high = stats.bootstrap_difference(labels, probs_good, probs_poor, "test/acc", n_resamples=500)
    observed = (good == labels).mean() - (poor == labels).mean()
    assert diff == pytest.approx(observed) and low < observed < high and low > 0
    _, f1_low, f1_high = stats.bootstrap_difference(labels, probs_good, probs_poor, "test/f1_macro", n_resamples=200)
    assert f1_low < f1_high


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="test/acc"):
        stats.metric_fn("test/bleu")
