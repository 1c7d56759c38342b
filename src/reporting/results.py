"""Read a design's results directory: runs.csv, comparisons vs the control, summary.md and plots."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.stats import entropy as scipy_entropy

from src.errors import ConfigError
from src.reporting import stats
from src.rundir import config_path, predictions_path, read_config, read_metrics, read_predictions
from src.validation import is_number

TABLE_METRICS = ("test/acc", "test/f1_macro", "test/auroc", "test/loss", "duration_s")
VALIDATION_METRICS = ("val/acc", "val/f1_macro", "val/loss")
IGNORED_IN_HASH = ("seed", "run_dir", "ckpt_path", "logger")


@dataclass
class Results:
    """A design's finished runs (one row per run) and what the design says about control and metric."""

    dir: Path
    record: dict[str, Any]
    runs: pd.DataFrame

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def control(self) -> str:
        return self.record["control"]

    @property
    def metric(self) -> str:
        return self.record["metric"]

    @property
    def primary_test(self) -> str:
        """The design's decisive test (records written before it existed: the paired t-test)."""
        return self.record.get("primary_test", "t")

    @property
    def selection_metric(self) -> str:
        """The validation metric choices are made on (records written before it existed: val/f1_macro)."""
        return self.record.get("selection_metric", "val/f1_macro")

    def selected_arm(self) -> str | None:
        """The training arm (a configuration being chosen) with the best mean selection metric on validation."""
        trained = self.runs[self.runs["kind"] == "train"]
        if self.selection_metric not in trained:
            return None
        means = trained.groupby("arm")[self.selection_metric].mean().dropna()
        if means.empty:
            return None
        return str(means.idxmax() if stats.higher_is_better(self.selection_metric) else means.idxmin())

    @property
    def alpha(self) -> float:
        """The family-wise significance level of the primary test."""
        return self.record.get("alpha", 0.05)

    @property
    def family_size(self) -> int:
        """m: every planned comparison (each non-control arm of the design vs the control), run or not."""
        return len([a for a in self.record["arms"] if a != self.control])

    @property
    def arms(self) -> list[str]:
        """Arms with at least one finished run, in design order."""
        return [a for a in self.record["arms"] if a in set(self.runs["arm"])]

    @property
    def label_names(self) -> list[str]:
        """Class names, from the header of a predictions file (prob_<name> columns)."""
        header = pd.read_csv(self.run_path(self.runs["run_dir"].iloc[0]) / "predictions_test.csv", nrows=0).columns
        return [c.removeprefix("prob_") for c in header if c.startswith("prob_")]

    def values(self, arm: str, metric: str | None = None) -> pd.Series:
        """The metric per seed of one arm."""
        rows = self.runs[self.runs["arm"] == arm]
        return rows.set_index("seed")[metric or self.metric]

    def predictions(self, arm: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """seed -> (test probabilities, labels) of one arm."""
        rows = self.runs[self.runs["arm"] == arm]
        return {int(r.seed): read_predictions(self.run_path(r.run_dir)) for r in rows.itertuples()}

    def run_path(self, run_dir: str) -> Path:
        """A run's folder from its runs.csv entry (relative to the results directory, so reports move)."""
        return self.dir / run_dir

    def training_log(self, run_dir: str) -> pd.DataFrame | None:
        """A run's CSV-logger metrics (csv/metrics.csv); None for baselines and fusions, which do not train."""
        path = self.run_path(run_dir) / "csv" / "metrics.csv"
        return pd.read_csv(path) if path.is_file() else None


def load_results(results_dir: str | Path) -> Results:
    """Collect results/<design>/: design.yaml (from the runner) and runs/<arm>/seed<k>/metrics.json."""
    results_dir = Path(results_dir)
    record_path = results_dir / "design.yaml"
    if not record_path.is_file():
        raise ConfigError(f"{record_path} not found: run `make design DESIGN={results_dir.name}` first.")
    record = yaml.safe_load(record_path.read_text())
    rows = [
        _run_row(record, path.parent, results_dir)
        for arm in record["arms"]
        for path in sorted((results_dir / "runs" / arm).glob("seed*/metrics.json"))
    ]
    if not rows:
        raise ConfigError(f"No finished runs under {results_dir / 'runs'}.")
    return Results(results_dir, record, pd.DataFrame(rows).sort_values(["arm", "seed"], kind="stable"))


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A saved run config less what differs between the seeds of one arm (IGNORED_IN_HASH): what defines the arm."""
    return {k: v for k, v in config.items() if k not in IGNORED_IN_HASH}


def config_hash(run_dir: Path) -> str:
    """Hash of the config.yaml a run saved (what produced its numbers, any arm kind), less seed, paths and logger."""
    saved = read_config(run_dir)
    if saved is None:
        raise ConfigError(
            f"{config_path(run_dir)} not found: {run_dir} was made by an older version that saved no config for "
            "baselines and fusions. Rerun the design to redo it (baselines and fusions are redone), or delete "
            "that directory."
        )
    content = comparable(saved)
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _run_row(record: dict[str, Any], run_dir: Path, results_dir: Path) -> dict[str, Any]:
    summary = read_metrics(run_dir)
    arm = run_dir.parent.name
    spec = record["arms"][arm]
    return {
        "arm": arm,
        "seed": int(run_dir.name.removeprefix("seed")),
        "kind": spec["kind"],
        "config_hash": config_hash(run_dir),
        "overrides": " ".join(spec.get("overrides") or []),
        "duration_s": round(summary.get("duration_s", float("nan")), 2),
        **summary.get("validation", {}),
        **summary["test"],
        "run_dir": str(run_dir.relative_to(results_dir)),
    }


def training_losses(results: Results) -> pd.DataFrame:
    """Per trained run (csv/metrics.csv): the first logged `train/loss` and the mean of the last quarter of the
    logged values, plain NLL in every arm; baselines and fusions have none."""
    rows = []
    for row in results.runs.itertuples():
        log = results.training_log(row.run_dir)
        losses = log["train/loss"].dropna() if log is not None and "train/loss" in log else pd.Series(dtype=float)
        if not losses.empty:
            last = losses.iloc[-max(1, len(losses) // 4):]
            rows.append({"arm": row.arm, "seed": row.seed, "first": losses.iloc[0], "last": last.mean()})
    return pd.DataFrame(rows, columns=["arm", "seed", "first", "last"])


LEARNED_FRACTION = 0.85  # a final training loss at or above this share of the class-prior entropy: did not learn
LEARNING_COLUMNS = ["arm", "final_loss", "prior_entropy", "val_metric", "majority", "learned", "stuck_seeds"]


def learning_check(results: Results) -> pd.DataFrame:
    """Per arm (means over seeds): final training loss vs the training split's class-prior entropy, the validation
    counterpart of the primary metric vs a majority-class predictor's, whether the arm learned (neither check
    failed; an arm without a training log is judged on validation alone), and the seeds that failed a check
    on their own (a stuck seed inside an arm that learned on average)."""
    metric = "val/" + results.metric.rsplit("/", 1)[-1]
    losses = training_losses(results).set_index(["arm", "seed"])["last"]
    rows = [{"arm": run["arm"], "seed": run["seed"], "final_loss": losses.get((run["arm"], run["seed"]), np.nan),
             "val_metric": run.get(metric, np.nan), **_prior_baseline(results, run["run_dir"], metric)}
            for run in results.runs.to_dict("records")]
    runs = pd.DataFrame(rows)
    better = stats.higher_is_better(metric)
    stuck = runs[_did_not_learn(runs, better)].groupby("arm")["seed"].apply(sorted)
    table = runs.drop(columns="seed").groupby("arm", sort=False).mean().reindex(results.arms).reset_index()
    table["learned"] = ~_did_not_learn(table, better)
    table["stuck_seeds"] = [stuck.get(arm, []) for arm in table["arm"]]
    learned = table.set_index("arm")["learned"]
    for arm, spec in results.record["arms"].items():  # a fusion (no validation predictions) is judged by its members
        if spec.get("kind") == "fusion" and arm in learned:
            table.loc[table["arm"] == arm, "learned"] = bool(learned[spec["members"]].all())
    return table[LEARNING_COLUMNS]


def _did_not_learn(frame: pd.DataFrame, higher_is_better: bool) -> pd.Series:
    """Rows whose final training loss is near the prior entropy or whose validation metric is the majority's."""
    stuck = frame["final_loss"] >= LEARNED_FRACTION * frame["prior_entropy"]
    metric, majority = frame["val_metric"], frame["majority"]
    return stuck | (metric <= majority if higher_is_better else metric >= majority)


TUNING_COLUMNS = ["arm", "seed", "setting", "grid", "chosen", "at_edge"]


def baseline_tuning(results: Results) -> pd.DataFrame:
    """Per baseline run that chose its settings on validation: each searched setting's grid, the choice, and
    whether the choice is an end of an ordered grid (3+ numbers), where a wider grid might score better."""
    rows = []
    for run in results.runs.itertuples():
        selection = read_metrics(results.run_path(run.run_dir)).get("selection") or {}
        for setting, chosen in selection.get("chosen", {}).items():
            grid = list(dict.fromkeys(point["params"][setting] for point in selection["grid"]))
            ordered = len(grid) >= 3 and all(is_number(v) for v in grid)
            rows.append({"arm": run.arm, "seed": run.seed, "setting": setting, "grid": grid, "chosen": chosen,
                         "at_edge": ordered and chosen in (min(grid), max(grid))})
    # object dtype: a chosen None (e.g. class_weight) stays None instead of becoming NaN beside numbers
    return pd.DataFrame(rows, columns=TUNING_COLUMNS, dtype=object).astype({"at_edge": bool})


def _prior_baseline(results: Results, run_dir: str, metric: str) -> dict[str, float]:
    """The class-prior entropy of a run's training split (its validation class shares, times
    `data.train_class_fractions` when it sliced the training split) and `metric` of predicting the validation
    class shares for every validation example (the majority class by argmax); NaN for a run without validation
    predictions (a fusion, whose weights were fitted on validation)."""
    if not predictions_path(results.run_path(run_dir), "validation").is_file():
        return {"prior_entropy": np.nan, "majority": np.nan}
    probs, labels = read_predictions(results.run_path(run_dir), "validation")
    shares = np.bincount(labels, minlength=probs.shape[1]) / len(labels)
    fractions = ((read_config(results.run_path(run_dir)) or {}).get("data") or {}).get("train_class_fractions")
    train_shares = shares * np.asarray(fractions if fractions else 1.0)
    majority = stats.metric_fn(metric)(labels, np.tile(shares, (len(labels), 1)))
    return {"prior_entropy": float(scipy_entropy(train_shares)), "majority": float(majority)}


def arm_table(results: Results, metrics: tuple[str, ...] = TABLE_METRICS) -> pd.DataFrame:
    """Per arm and metric: n, mean, std and the 95 % t-interval over seeds."""
    rows = []
    for arm in results.arms:
        for metric in metrics:
            if metric in results.runs:
                rows.append({"arm": arm, "metric": metric, **stats.seed_summary(results.values(arm, metric))})
    return pd.DataFrame(rows)


def unpaired_rows(results: Results) -> list[str]:
    """Arms whose validation or test labels at a seed differ from the control's: they read other rows (e.g. runs
    reused from code that split the data differently), so that seed's comparison does not pair like with like."""
    problems = []
    for split in ("validation", "test"):
        for seed in sorted(int(s) for s in results.runs["seed"].unique()):
            rows = results.runs[results.runs["seed"] == seed].set_index("arm")
            if results.control not in rows.index:
                continue
            labels = {arm: _labels(results.run_path(rows.loc[arm, "run_dir"]), split) for arm in rows.index}
            other = [arm for arm, seen in labels.items() if seen is not None and labels[results.control] is not None
                     and not np.array_equal(seen, labels[results.control])]
            if other:
                problems.append(f"{split} split, seed {seed}: {', '.join(other)}")
    return problems


def _labels(run_dir: Path, split: str) -> np.ndarray | None:
    """The label column of a run's predictions on `split` (None without them: a fusion has no validation file)."""
    return read_predictions(run_dir, split)[1] if predictions_path(run_dir, split).is_file() else None


def _paired_predictions(results: Results, arm: str) -> list[tuple[int, tuple, tuple]]:
    """(seed, arm predictions, control predictions) for the seeds both have, on identical test rows."""
    arm_preds, control_preds = results.predictions(arm), results.predictions(results.control)
    return [
        (seed, arm_preds[seed], control_preds[seed])
        for seed in sorted(set(arm_preds) & set(control_preds))
        if np.array_equal(arm_preds[seed][1], control_preds[seed][1])
    ]


COMPARISON_COLUMNS = [
    "arm",
    "n",
    "diff_mean",
    "cohens_d",
    *(f"{test}_p{suffix}" for test in stats.P_TESTS for suffix in ("", "_holm")),
    "aso_eps_min",
    "primary_p_holm",
    "significant",
    "learned",
    "pooled_diff",
    "boot_low",
    "boot_high",
    "mcnemar_p",
]


def compare_to_control(results: Results, n_resamples: int = 1000) -> pd.DataFrame:
    """Every arm vs the control on the primary metric: seed-paired tests (each Holm-corrected over the planned
    family), ASO, d, the primary test's decision at alpha, whether both arms learned (else the comparison is no
    test of the method), and the example-level clustered bootstrap CI and McNemar (accuracy only)."""
    if results.control not in results.arms:  # e.g. a sweep agent's first runs: nothing to compare with yet
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rows = [
        {**_seed_level(results, arm), **_example_level(results, arm, n_resamples)}
        for arm in results.arms
        if arm != results.control
    ]
    decided = ("significant", "learned")
    table = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if "holm" not in c and c not in decided])
    for test in stats.P_TESTS:
        table[f"{test}_p_holm"] = stats.holm(table[f"{test}_p"].tolist(), results.family_size)
    table["primary_p_holm"], table["significant"] = _primary_decision(table, results.primary_test, results.alpha)
    learned = learning_check(results).set_index("arm")["learned"]
    table["learned"] = table["arm"].map(learned) & learned[results.control]  # else not a test of the method
    return table[COMPARISON_COLUMNS]


def _seed_level(results: Results, arm: str) -> dict[str, Any]:
    """Tests of one arm vs the control over the seeds both have; ASO Bonferroni-corrected over the family."""
    values, control = results.values(arm), results.values(results.control)
    seeds = sorted(set(values.index) & set(control.index))
    arm_values, control_values = values[seeds].to_numpy(), control[seeds].to_numpy()
    eps = stats.aso_eps_min(
        arm_values, control_values, results.family_size, results.alpha, stats.higher_is_better(results.metric)
    )
    return {"arm": arm, "n": len(seeds), **stats.paired_tests(arm_values, control_values), "aso_eps_min": eps}


def _primary_decision(table: pd.DataFrame, test: str, alpha: float) -> tuple[pd.Series, pd.Series]:
    """The primary test's Holm p (NaN for ASO, which is no p-value) and whether it is significant."""
    if test == "aso":
        return pd.Series(np.nan, index=table.index), table["aso_eps_min"] < stats.ASO_THRESHOLD
    adjusted = table[f"{test}_p_holm"]
    return adjusted, adjusted <= alpha


def _example_level(results: Results, arm: str, n_resamples: int) -> dict[str, Any]:
    """Bootstrap CI of the metric difference over test examples (clustered: an example with all its seeds); McNemar
    per seed when the metric is accuracy."""
    paired = _paired_predictions(results, arm)
    if not paired:
        return {"pooled_diff": np.nan, "boot_low": np.nan, "boot_high": np.nan, "mcnemar_p": ""}
    labels = np.stack([a[1] for _, a, _ in paired])
    probs_arm, probs_control = np.stack([a[0] for _, a, _ in paired]), np.stack([c[0] for _, _, c in paired])
    if _same_examples_every_seed(results, arm, labels):
        diff, low, high = stats.bootstrap_difference(labels, probs_arm, probs_control, results.metric, n_resamples)
    else:  # a row index is not one example across seeds: no clustered CI
        diff, low, high = stats.pooled_difference(labels, probs_arm, probs_control, results.metric), np.nan, np.nan
    mcnemar = [f"{stats.mcnemar_test(a[1], a[0].argmax(1), c[0].argmax(1)):.3g}" for _, a, c in paired]
    return {"pooled_diff": diff, "boot_low": low, "boot_high": high,
            "mcnemar_p": "/".join(mcnemar) if stats.is_accuracy(results.metric) else ""}


def _same_examples_every_seed(results: Results, arm: str, labels: np.ndarray) -> bool:
    """Whether each row index is one example on every seed: one seed, or the whole test split (no seed-drawn
    `data.limit_test` subset smaller than it) with the same labels on every seed."""
    if len(labels) == 1:
        return True
    runs = results.runs[results.runs["arm"].isin([arm, results.control])]
    limits = [(read_config(results.run_path(r)) or {}).get("data", {}).get("limit_test") for r in runs["run_dir"]]
    whole = all(limit is None or labels.shape[1] < limit for limit in limits)
    return whole and bool((labels == labels[0]).all())
