"""Design statistics against scipy / statsmodels / deepsig on fixed numbers, and the report's test family."""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deepsig import aso
from scipy import stats as sps
from sklearn.metrics import f1_score as sk_f1
from statsmodels.stats.multitest import multipletests

from src.designs.design_spec import load_design
from src.errors import ConfigError
from src.reporting import stats
from src.reporting.results import (
    COMPARISON_COLUMNS,
    Results,
    arm_table,
    baseline_tuning,
    compare_to_control,
    learning_check,
    load_results,
)
from src.reporting.summary import comparison_markdown, training_markdown, tuning_markdown

ARM = [0.81, 0.84, 0.80, 0.86, 0.83]
CONTROL = [0.79, 0.80, 0.81, 0.82, 0.80]

REPO = Path(__file__).resolve().parents[2]


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


def test_paired_tests_match_scipy_on_normal_data() -> None:
    rng = np.random.default_rng(7)
    control = rng.normal(0.80, 0.02, 8)
    arm = control + rng.normal(0.01, 0.01, 8)
    result = stats.paired_tests(arm, control)
    assert result["t_p"] == pytest.approx(sps.ttest_rel(arm, control).pvalue)
    assert result["wilcoxon_p"] == pytest.approx(sps.wilcoxon(arm, control).pvalue)
    # All 2^8 sign flips of the differences: scipy's exact paired permutation test of the mean difference.
    exact = sps.permutation_test(
        (arm, control), lambda a, c, axis: np.mean(a - c, axis=axis), permutation_type="samples", n_resamples=np.inf
    )
    assert result["permutation_p"] == pytest.approx(exact.pvalue)


def test_identical_arm_has_p_one_for_every_test() -> None:
    result = stats.paired_tests(CONTROL, CONTROL)
    assert result["diff_mean"] == 0 and math.isnan(result["cohens_d"])
    assert (result["t_p"], result["wilcoxon_p"], result["permutation_p"]) == (1.0, 1.0, 1.0)


def test_constant_shift_gets_the_exact_permutation_p() -> None:
    # arm - control is 0.02 on every seed (up to floating-point noise): zero variance, t is undefined.
    arm, control = [0.82, 0.84, 0.86], [0.80, 0.82, 0.84]
    assert sps.ttest_rel(arm, control).pvalue < 1e-10  # what scipy says on the unrounded noise
    result = stats.paired_tests(arm, control)
    assert result["t_p"] == result["permutation_p"] == pytest.approx(0.25)
    assert result["wilcoxon_p"] == pytest.approx(0.25) and math.isnan(result["cohens_d"])


def test_ties_and_zeros_are_scipy_on_the_exact_differences() -> None:
    control = np.array([0.80, 0.81, 0.79, 0.83, 0.78, 0.82])
    differences = np.array([0.01, 0.01, 0.0, -0.02, 0.03, 0.01])  # three tied, one zero
    result = stats.paired_tests(control + differences, control)
    assert result["wilcoxon_p"] == pytest.approx(sps.wilcoxon(differences).pvalue)
    assert result["t_p"] == pytest.approx(sps.ttest_1samp(differences, 0).pvalue)
    exact = sps.permutation_test((differences,), np.mean, permutation_type="samples", n_resamples=np.inf)
    assert result["permutation_p"] == pytest.approx(exact.pvalue)


def test_holm_counts_an_undefined_p_as_one() -> None:
    adjusted = stats.holm([0.01, 0.04, float("nan"), 0.03])
    expected = multipletests([0.01, 0.04, 1.0, 0.03], method="holm")[1]
    assert adjusted == pytest.approx(expected.tolist())
    # m = 4: the smallest p is multiplied by 4, not by the 3 defined ones.
    assert adjusted[0] == pytest.approx(0.04)


def test_holm_keeps_planned_comparisons_without_runs_in_the_family() -> None:
    expected = multipletests([0.01, 0.02, 1.0, 1.0], method="holm")[1][:2]
    assert stats.holm([0.01, 0.02], family_size=4) == pytest.approx(expected.tolist())
    assert stats.holm([], family_size=3) == []


def test_min_attainable_p_is_the_most_extreme_sign_pattern() -> None:
    all_positive = [0.01, 0.02, 0.03]
    assert stats.min_attainable_p("wilcoxon", 3) == sps.wilcoxon(all_positive).pvalue == 0.25
    flips = sps.permutation_test((np.array(all_positive),), np.mean, permutation_type="samples")
    assert stats.min_attainable_p("permutation", 3) == pytest.approx(flips.pvalue)
    assert stats.min_attainable_p("wilcoxon", 6) == 2 / 64
    assert stats.min_attainable_p("t", 3) == 0.0 and stats.min_attainable_p("t", 1) == 1.0
    assert math.isnan(stats.min_attainable_p("aso", 3))
    # 2/2^n <= 0.05 first at n = 6; with m = 3 Holm's first step needs 3 * 2/2^n <= 0.05: n = 7.
    assert stats.seeds_needed("wilcoxon", 0.05, 1) == 6 and stats.seeds_needed("wilcoxon", 0.05, 3) == 7


def test_significance_floor_warns_for_three_seeds_wilcoxon() -> None:
    with pytest.warns(stats.SignificanceFloorWarning, match="Use at least 6 seeds"):
        line = stats.significance_floor("wilcoxon", 3, 0.05, 1)
    assert line.startswith("WARNING: with 3 seeds the smallest attainable Wilcoxon signed-rank test p is 0.25")


def test_significance_floor_counts_the_holm_step() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.significance_floor("permutation", 6, 0.05, 1) == ""  # 0.03125 <= 0.05
        assert stats.significance_floor("t", 3, 0.05, 5) == ""
        assert stats.significance_floor("aso", 3, 0.05, 5) == ""
    with pytest.warns(stats.SignificanceFloorWarning, match="m=2 comparisons"):
        stats.significance_floor("permutation", 6, 0.05, 2)  # 2 * 0.03125 > 0.05


def test_aso_is_deepsig_seeded_and_bonferroni_corrected() -> None:
    arm, control = np.array([0.81, 0.84, 0.80, 0.86, 0.83]), np.array([0.79, 0.80, 0.81, 0.82, 0.80])
    settings = dict(num_bootstrap_iterations=stats.ASO_ITERATIONS, dt=stats.ASO_DT, seed=0, show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = aso(arm, control, confidence_level=0.95, num_comparisons=3, **settings)
        expected_loss = aso(-arm, -control, confidence_level=0.9, num_comparisons=1, **settings)
    assert stats.aso_eps_min(arm, control, family_size=3, alpha=0.05) == pytest.approx(float(expected))
    assert stats.aso_eps_min(arm, control, alpha=0.1, higher=False) == pytest.approx(float(expected_loss))
    assert stats.aso_eps_min([0.85, 0.86, 0.87], [0.80, 0.81, 0.82]) == 0.0  # no overlap: full dominance
    assert math.isnan(stats.aso_eps_min([0.9], [0.8]))


def test_aso_leaves_numpy_global_generator_alone() -> None:
    np.random.seed(3)
    expected = np.random.random()
    np.random.seed(3)
    stats.aso_eps_min(ARM, CONTROL)
    assert np.random.random() == expected


def _results(tmp_path: Path, primary_test: str, same_val_acc: float = 0.75) -> Results:
    """Three seeds of a control, an arm better on every seed, an identical arm; one planned arm never ran.
    Validation: balanced labels (the majority class scores 0.5), test predictions reused; no training logs."""
    labels = np.array([0, 1, 0, 1])
    scores = {"control": [0.80, 0.81, 0.79], "better": [0.84, 0.86, 0.85], "same": [0.80, 0.81, 0.79]}
    val_acc = {"control": 0.75, "better": 1.0, "same": same_val_acc}
    rows = []
    for arm, values in scores.items():
        for seed, value in enumerate(values, start=1):
            run_dir = tmp_path / arm / f"seed{seed}"
            run_dir.mkdir(parents=True)
            probs = np.eye(2)[labels if arm == "better" else np.array([0, 1, 1, 1])]
            for split in ("test", "validation"):
                pd.DataFrame({"label": labels, "prob_neg": probs[:, 0], "prob_pos": probs[:, 1]}).to_csv(
                    run_dir / f"predictions_{split}.csv", index=False
                )
            rows.append({"arm": arm, "seed": seed, "val/acc": val_acc[arm], "test/acc": value,
                         "run_dir": str(run_dir)})
    record = {
        "name": "toy",
        "control": "control",
        "metric": "test/acc",
        "arms": {name: {} for name in ("control", "better", "same", "unrun")},
        "primary_test": primary_test,
        "alpha": 0.05,
    }
    return Results(tmp_path, record, pd.DataFrame(rows))


def test_compare_to_control_corrects_every_test_over_the_planned_family(tmp_path: Path) -> None:
    table = compare_to_control(_results(tmp_path, "wilcoxon"), n_resamples=50).set_index("arm")
    assert list(table.reset_index().columns) == COMPARISON_COLUMNS and list(table.index) == ["better", "same"]
    for test in stats.P_TESTS:  # m = 3: better, same (p = 1) and unrun (p = 1)
        raw = [table.loc["better", f"{test}_p"], 1.0, 1.0]
        assert table.loc["same", f"{test}_p"] == 1.0
        assert table[f"{test}_p_holm"].tolist() == pytest.approx(multipletests(raw, method="holm")[1][:2].tolist())
    assert table.loc["better", "wilcoxon_p_holm"] == pytest.approx(0.75)  # 3 * 0.25
    assert table["primary_p_holm"].tolist() == table["wilcoxon_p_holm"].tolist()
    assert not table["significant"].any()
    assert table.loc["better", "aso_eps_min"] == pytest.approx(
        stats.aso_eps_min([0.84, 0.86, 0.85], [0.80, 0.81, 0.79], family_size=3)
    )


def test_aso_as_primary_decides_by_eps_min(tmp_path: Path) -> None:
    table = compare_to_control(_results(tmp_path, "aso"), n_resamples=50).set_index("arm")
    assert table["primary_p_holm"].isna().all()
    assert table["significant"].tolist() == (table["aso_eps_min"] < stats.ASO_THRESHOLD).tolist() == [True, False]


def test_report_states_family_alpha_floor_and_warns(tmp_path: Path) -> None:
    results = _results(tmp_path, "wilcoxon")
    comparisons = compare_to_control(results, n_resamples=50)
    with pytest.warns(stats.SignificanceFloorWarning):
        text = comparison_markdown(results, arm_table(results, ("test/acc",)), comparisons)
    assert "| **Wilcoxon p** (primary) |" in text and "| better |" in text and "0.25 (0.75)" in text
    assert "m = 3 planned comparisons" in text and "α = 0.05" in text
    assert "Smallest attainable p with n = 3 seeds: paired t p 0, Wilcoxon p 0.25, permutation p 0.25" in text
    assert "**WARNING: with 3 seeds" in text and "Use at least 7 seeds" in text


def test_arm_at_the_majority_class_or_the_prior_entropy_did_not_learn(tmp_path: Path) -> None:
    # `same` scores 0.5 on validation, what predicting the majority class of the balanced labels scores;
    # `better` logs a final training loss of 0.60 = 87 % of ln 2 (the prior entropy of balanced classes).
    results = _results(tmp_path, "t", same_val_acc=0.5)
    for seed in (1, 2, 3):
        log = tmp_path / "better" / f"seed{seed}" / "csv"
        log.mkdir()
        pd.DataFrame({"step": [0, 1, 2, 3], "train/loss": [0.69, 0.65, 0.62, 0.60]}).to_csv(log / "metrics.csv")
    check = learning_check(results).set_index("arm")
    assert check.loc["better", "prior_entropy"] == pytest.approx(math.log(2))
    assert check.loc["better", "final_loss"] == pytest.approx(0.60)  # the last quarter of 4 logged steps
    assert check["majority"].tolist() == [0.5, 0.5, 0.5]
    assert check["learned"].tolist() == [True, False, False]  # control, better, same
    table = compare_to_control(results, n_resamples=20)
    assert table["learned"].tolist() == [False, False]
    text = comparison_markdown(results, arm_table(results, ("test/acc",)), table)  # paired t: no floor warning
    assert "| better (did not learn) |" in text and "| no, not a test of the method |" in text
    training = training_markdown(results)
    assert "| better | 3 | 0.6900 ± 0.0000 | 0.6000 ± 0.0000 | 0.693 | 1.0000 (0.5000) | **did not learn** |" in (
        training)
    assert "| same | 3 | – | – | 0.693 | 0.5000 (0.5000) | **did not learn** |" in training


def test_a_stuck_seed_inside_an_arm_that_learned_is_named(tmp_path: Path) -> None:
    # `better` learns on seeds 1 and 2 (final loss 0.20) and not on seed 3 (0.60 = 87 % of ln 2): the arm's mean,
    # 0.333, is 48 % of ln 2, so the arm learned and seed 3 is named beside its verdict.
    results = _results(tmp_path, "t")
    for seed, final in ((1, 0.20), (2, 0.20), (3, 0.60)):
        log = tmp_path / "better" / f"seed{seed}" / "csv"
        log.mkdir()
        pd.DataFrame({"step": [0, 1], "train/loss": [0.69, final]}).to_csv(log / "metrics.csv")
    check = learning_check(results).set_index("arm")
    assert check["learned"].tolist() == [True, True, True] and check["stuck_seeds"].tolist() == [[], [3], []]
    assert "| better | 3 | 0.6900 ± 0.0000 | 0.3333 ± 0.2309 | 0.693 | 1.0000 (0.5000) | yes (seed 3 did not) |" in (
        training_markdown(results))


def test_prior_entropy_follows_the_training_class_fractions(tmp_path: Path) -> None:
    results = _results(tmp_path, "t")
    for run_dir in results.runs["run_dir"]:
        (Path(run_dir) / "config.yaml").write_text("data: {train_class_fractions: [1.0, 0.25]}\n")
    # Balanced validation times fractions 1 : 0.25 -> training shares 0.8 / 0.2.
    entropy = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert learning_check(results)["prior_entropy"].tolist() == pytest.approx([entropy] * 3)


def test_mcnemar_is_given_for_accuracy_only(tmp_path: Path) -> None:
    results = _results(tmp_path, "t")
    assert compare_to_control(results, n_resamples=20)["mcnemar_p"].tolist() == ["1/1/1", "1/1/1"]
    results.record["metric"] = "test/f1_macro"
    results.runs["test/f1_macro"], results.runs["val/f1_macro"] = results.runs["test/acc"], 0.75
    assert compare_to_control(results, n_resamples=20)["mcnemar_p"].tolist() == ["", ""]


def test_seeds_that_tested_different_examples_get_no_clustered_ci(tmp_path: Path) -> None:
    results = _results(tmp_path, "t")
    for run_dir in results.runs["run_dir"]:
        (Path(run_dir) / "config.yaml").write_text("data: {limit_test: 4}\n")  # a seed-drawn subset of 4 rows
    table = compare_to_control(results, n_resamples=20).set_index("arm")
    assert table.loc["better", "pooled_diff"] == pytest.approx(0.25)
    assert math.isnan(table.loc["better", "boot_low"]) and math.isnan(table.loc["better", "boot_high"])


def test_design_rejects_an_unknown_primary_test_or_alpha(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("arms: {control: [], other: []}\nprimary_test: anova\n")
    with pytest.raises(ConfigError, match="'primary_test'. Allowed: t, wilcoxon, permutation, aso"):
        load_design(path)
    path.write_text("arms: {control: [], other: []}\nalpha: 1.5\n")
    with pytest.raises(ConfigError, match="'alpha'"):
        load_design(path)
    path.write_text("arms: {control: [], other: []}\nprimary_test: permutation\nalpha: 0.01\n")
    assert (load_design(path).spec.primary_test, load_design(path).spec.alpha) == ("permutation", 0.01)


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
    probs_good, probs_poor = np.eye(2)[good][None], np.eye(2)[poor][None]  # one seed
    diff, low, high = stats.bootstrap_difference(labels[None], probs_good, probs_poor, "test/acc", n_resamples=500)
    observed = (good == labels).mean() - (poor == labels).mean()
    assert diff == pytest.approx(observed) and low < observed < high and low > 0
    _, f1_low, f1_high = stats.bootstrap_difference(labels[None], probs_good, probs_poor, "test/f1_macro",
                                                    n_resamples=200)
    assert f1_low < f1_high


def _one_hot(predictions: list[list[int]]) -> np.ndarray:
    """[seeds, examples] class predictions as [seeds, examples, 2] probabilities."""
    return np.eye(2)[np.array(predictions)]


def test_clustered_bootstrap_keeps_the_seeds_of_an_example_together() -> None:
    # Six examples (all label 1), two seeds: on seed 1 the arm is right and the control wrong on every example,
    # on seed 2 the reverse. Per example the seed-paired difference is (1 + -1) / 2 = 0, so every resample of
    # examples gives exactly 0: the CI is [0, 0]. Resampling the 12 rows as independent gives a wide CI.
    labels = np.ones((2, 6), dtype=int)
    arm, control = _one_hot([[1] * 6, [0] * 6]), _one_hot([[0] * 6, [1] * 6])
    assert stats.bootstrap_difference(labels, arm, control, "test/acc", n_resamples=200) == (0.0, 0.0, 0.0)
    _, low, high = stats.bootstrap_difference(labels.reshape(1, 12), arm.reshape(1, 12, 2),
                                              control.reshape(1, 12, 2), "test/acc", n_resamples=200)
    assert low <= -1 / 3 and high >= 1 / 3


def test_clustered_bootstrap_of_two_examples_is_their_closed_form() -> None:
    # Example A: arm right, control wrong on both seeds (difference 1); example B: both right on both (0).
    # Resamples {A, A}, {A, B}, {B, B} give 1, 0.5, 0 with probabilities 1/4, 1/2, 1/4: the 2.5th and 97.5th
    # percentiles are 0 and 1; the point estimate is (2 - 0) / 4 right answers = 0.5.
    labels = np.ones((2, 2), dtype=int)
    arm, control = _one_hot([[1, 1], [1, 1]]), _one_hot([[0, 1], [0, 1]])
    assert stats.bootstrap_difference(labels, arm, control, "test/acc", n_resamples=1000) == (0.5, 0.0, 1.0)


def test_pooled_difference_is_the_metric_on_all_seeds_rows() -> None:
    labels = np.array([[0, 1, 1], [0, 1, 1], [0, 1, 1]])
    arm, control = _one_hot([[0, 1, 0], [0, 0, 0], [1, 1, 1]]), _one_hot([[0, 0, 0], [0, 0, 0], [0, 0, 0]])
    # Accuracy: per example, the mean over seeds of (arm right) - (control right): (2/3 - 1, 2/3 - 0, 1/3 - 0),
    # whose mean is 2/9.
    assert stats.pooled_difference(labels, arm, control, "test/acc") == pytest.approx(2 / 9)
    expected = sk_f1(labels.ravel(), arm.argmax(2).ravel(), average="macro") - sk_f1(
        labels.ravel(), control.argmax(2).ravel(), average="macro")
    assert stats.pooled_difference(labels, arm, control, "test/f1_macro") == pytest.approx(expected)
    assert stats.pooled_difference(labels, arm, control, "test/acc", np.array([1, 1])) == pytest.approx(2 / 3)


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="test/acc"):
        stats.metric_fn("test/bleu")


def test_one_seed_gives_no_seed_level_evidence() -> None:
    # A single seed (a recipe search, the full-data check) has no seed-level test: p = 1, example-level tests decide.
    result = stats.paired_tests([0.9], [0.8])
    assert (result["t_p"], result["wilcoxon_p"], result["permutation_p"]) == (1.0, 1.0, 1.0)
    assert result["diff_mean"] == pytest.approx(0.1)


def test_a_baseline_choice_at_an_end_of_its_grid_is_flagged(tmp_path: Path) -> None:
    results = _results(tmp_path, "t")
    chosen_c = {1: 16.0, 2: 16.0, 3: 4.0}
    for row in results.runs.itertuples():
        selection = {} if row.arm != "control" else {"selection": {
            "metric": "val/acc", "chosen": {"clf__C": chosen_c[row.seed], "clf__class_weight": "balanced"},
            "grid": [{"params": {"clf__C": c, "clf__class_weight": w}, "val/acc": 0.5}
                     for c in (0.25, 1.0, 4.0, 16.0) for w in (None, "balanced")]}}
        (Path(row.run_dir) / "metrics.json").write_text(json.dumps({"test": {}, **selection}))
    tuning = baseline_tuning(results)
    assert tuning[tuning["setting"] == "clf__C"]["at_edge"].tolist() == [True, True, False]
    assert tuning[tuning["setting"] == "clf__class_weight"]["at_edge"].tolist() == [False] * 3  # not ordered
    assert set(tuning["arm"]) == {"control"} and tuning["grid"].iloc[0] == [0.25, 1.0, 4.0, 16.0]
    text = tuning_markdown(results)
    assert "| control | 1 | `clf__C` | 0.25, 1.0, 4.0, 16.0 | 16.0 **(end of the grid)** |" in text
    assert "| control | 3 | `clf__class_weight` | None, balanced | balanced |" in text
    assert "**Warning:** `control` chose `clf__C` at an end of its grid in 2 of 3 seeds" in text
    assert "clf__class_weight` at an end" not in text


def test_the_committed_reports_flag_their_under_tuned_controls() -> None:
    flagged = {name: baseline_tuning(load_results(REPO / "reports" / name)).query("at_edge")
               for name in ("balancing", "imdb_full", "optimizers", "default_recipe")}
    assert flagged["balancing"]["seed"].tolist() == [1, 2, 3, 4, 5]  # C = 16, the top of [0.25, 1, 4, 16]
    assert flagged["imdb_full"][["arm", "chosen"]].values.tolist() == [["tfidf_logreg", 64.0]]
    assert flagged["optimizers"].empty  # iteration 3 widened its grid to C 0.25 … 1024: interior on every seed
    assert flagged["default_recipe"].empty  # C = 16 of [0.25 … 64]: interior
