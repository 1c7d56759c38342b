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

from src.errors import ConfigError
from src.experiments import stats
from src.experiments.predictions import read_predictions

TABLE_METRICS = ("test/acc", "test/f1_macro", "test/auroc", "test/loss", "duration_s")
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
    def arms(self) -> list[str]:
        """Arms with at least one finished run, in design order."""
        return [a for a in self.record["arms"] if a in set(self.runs["arm"])]

    @property
    def label_names(self) -> list[str]:
        """Class names, from the header of a predictions file (prob_<name> columns)."""
        header = pd.read_csv(Path(self.runs["run_dir"].iloc[0]) / "predictions_test.csv", nrows=0).columns
        return [c.removeprefix("prob_") for c in header if c.startswith("prob_")]

    def values(self, arm: str, metric: str | None = None) -> pd.Series:
        """The metric per seed of one arm."""
        rows = self.runs[self.runs["arm"] == arm]
        return rows.set_index("seed")[metric or self.metric]

    def predictions(self, arm: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """seed -> (test probabilities, labels) of one arm."""
        rows = self.runs[self.runs["arm"] == arm]
        return {int(r.seed): read_predictions(Path(r.run_dir)) for r in rows.itertuples()}


def load_results(results_dir: str | Path) -> Results:
    """Collect results/<design>/: design.yaml (from the runner) and runs/<arm>/seed<k>/metrics.json."""
    results_dir = Path(results_dir)
    record_path = results_dir / "design.yaml"
    if not record_path.is_file():
        raise ConfigError(f"{record_path} not found: run `make design DESIGN={results_dir.name}` first.")
    record = yaml.safe_load(record_path.read_text())
    rows = [
        _run_row(record, path.parent)
        for arm in record["arms"]
        for path in sorted((results_dir / "runs" / arm).glob("seed*/metrics.json"))
    ]
    if not rows:
        raise ConfigError(f"No finished runs under {results_dir / 'runs'}.")
    return Results(results_dir, record, pd.DataFrame(rows).sort_values(["arm", "seed"], kind="stable"))


def config_hash(record: dict[str, Any], arm: str, run_dir: Path) -> str:
    """Hash of what defines the arm: a training run's saved config (less seed/paths/logger), else its spec."""
    saved = run_dir / "config.yaml"
    if record["arms"][arm]["kind"] == "train" and saved.is_file():
        content = {k: v for k, v in yaml.safe_load(saved.read_text()).items() if k not in IGNORED_IN_HASH}
    else:
        content = {
            "base": record["base"],
            "arm": record["arms"][arm],
        }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _run_row(record: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "metrics.json").read_text())
    arm = run_dir.parent.name
    spec = record["arms"][arm]
    return {
        "arm": arm,
        "seed": int(run_dir.name.removeprefix("seed")),
        "kind": spec["kind"],
        "config_hash": config_hash(record, arm, run_dir),
        "overrides": " ".join(spec.get("overrides") or []),
        "duration_s": round(summary.get("duration_s", float("nan")), 2),
        **summary["test"],
        "run_dir": str(run_dir),
    }


def arm_table(results: Results, metrics: tuple[str, ...] = TABLE_METRICS) -> pd.DataFrame:
    """Per arm and metric: n, mean, std and the 95 % t-interval over seeds."""
    rows = []
    for arm in results.arms:
        for metric in metrics:
            if metric in results.runs:
                rows.append({"arm": arm, "metric": metric, **stats.seed_summary(results.values(arm, metric))})
    return pd.DataFrame(rows)


def _paired_predictions(results: Results, arm: str) -> list[tuple[int, tuple, tuple]]:
    """(seed, arm predictions, control predictions) for the seeds both have, on identical test rows."""
    arm_preds, control_preds = results.predictions(arm), results.predictions(results.control)
    return [
        (seed, arm_preds[seed], control_preds[seed])
        for seed in sorted(set(arm_preds) & set(control_preds))
        if np.array_equal(arm_preds[seed][1], control_preds[seed][1])
    ]


def compare_to_control(results: Results, n_resamples: int = 1000) -> pd.DataFrame:
    """Every arm vs the control on the primary metric: seed-paired tests, Holm, d, bootstrap CI, McNemar."""
    columns = [
        "arm",
        "diff_mean",
        "t_p",
        "t_p_holm",
        "wilcoxon_p",
        "cohens_d",
        "pooled_diff",
        "boot_low",
        "boot_high",
        "mcnemar_p",
    ]
    if results.control not in results.arms:  # e.g. a sweep agent's first runs: nothing to compare with yet
        return pd.DataFrame(columns=columns)
    control = results.values(results.control)
    rows = []
    for arm in results.arms:
        if arm == results.control:
            continue
        values = results.values(arm)
        seeds = sorted(set(values.index) & set(control.index))
        row = {"arm": arm, **stats.paired_tests(values[seeds].to_numpy(), control[seeds].to_numpy())}
        rows.append({**row, **_example_level(results, arm, n_resamples)})
    table = pd.DataFrame(rows, columns=[c for c in columns if c != "t_p_holm"])
    table.insert(3, "t_p_holm", stats.holm(table["t_p"].tolist()))
    return table


def _example_level(results: Results, arm: str, n_resamples: int) -> dict[str, Any]:
    """Bootstrap CI of the metric difference over the seed-paired test examples; McNemar per seed."""
    paired = _paired_predictions(results, arm)
    if not paired:
        return {"pooled_diff": np.nan, "boot_low": np.nan, "boot_high": np.nan, "mcnemar_p": ""}
    labels = np.concatenate([a[1] for _, a, _ in paired])
    probs_arm = np.concatenate([a[0] for _, a, _ in paired])
    probs_control = np.concatenate([c[0] for _, _, c in paired])
    diff, low, high = stats.bootstrap_difference(labels, probs_arm, probs_control, results.metric, n_resamples)
    mcnemar = [f"{stats.mcnemar_test(a[1], a[0].argmax(1), c[0].argmax(1)):.3g}" for _, a, c in paired]
    return {"pooled_diff": diff, "boot_low": low, "boot_high": high, "mcnemar_p": "/".join(mcnemar)}
