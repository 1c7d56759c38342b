"""Committed reports: a design's raw per-run files copied into reports/<design>/, its tables rendered there.

A report directory holds everything its tables and plots are computed from (design.yaml, provenance.json,
and per run config.yaml, metrics.json, predictions and the training curve), so `make reports` re-renders
it in seconds on a fresh clone, and `make reports RERUN=1` reruns the command in its provenance.json.
"""

import shlex
import shutil
from pathlib import Path

from src.experiments.report import write_report
from src.provenance import write_provenance

REPORTS_ROOT = Path("reports")
RAW_FILES = ("config.yaml", "metrics.json", "predictions_validation.csv", "predictions_test.csv",
             "csv/metrics.csv")


def record_provenance(results_dir: Path, argv: list[str]) -> Path:
    """results/<design>/provenance.json: how to rerun it, with the code version, packages and machine."""
    return write_provenance(results_dir, shlex.join([".venv/bin/python", "-m", "src.design", *argv]))


def publish(results_dir: Path, report_dir: Path) -> dict[str, Path]:
    """Replace report_dir's raw files with results_dir's (no checkpoints), then render the report there."""
    shutil.rmtree(report_dir / "runs", ignore_errors=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    for name in ("design.yaml", "provenance.json", "trials.csv"):
        if name != "trials.csv" or (results_dir / name).is_file():  # trials.csv: designs with a TPE search
            shutil.copy2(results_dir / name, report_dir / name)
    for finished in sorted(results_dir.glob("runs/*/seed*/metrics.json")):
        run = finished.parent
        for name in RAW_FILES:
            if (run / name).is_file():
                target = report_dir / run.relative_to(results_dir) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, target)
    return write_report(report_dir)
