"""The tiny design end to end: runs, resume after an interruption, report files, and the notebook."""

import json
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from src.config import REPO_ROOT
from src.errors import ConfigError
from src.experiments import runner
from src.experiments.design import Design, load_design
from src.experiments.report import write_report


def _tiny(results_root: Path, data_cache: Path) -> Design:
    design = load_design("tiny", results_root=results_root)
    design.spec.base.append(f"data.cache_dir={data_cache}")
    return design


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> tuple[Design, list[str]]:
    """Run part of the tiny design (as if killed midway), then rerun it all; record what the rerun ran."""
    design = _tiny(tmp_path_factory.mktemp("results"), data_cache)
    first = design.runs()[:3]
    assert runner.run_design(design, select=first) == []
    executed = []
    original = runner.execute

    def spy(design: Design, run) -> dict:
        executed.append(f"{run.arm.name}/seed{run.seed}")
        return original(design, run)

    runner.execute = spy
    try:
        assert runner.run_design(design) == []
    finally:
        runner.execute = original
    write_report(design.results_dir, n_resamples=200)
    return design, executed


def test_rerun_completes_only_the_missing_runs(tiny_results: tuple[Design, list[str]]) -> None:
    design, executed = tiny_results
    assert executed == ["high_lr/seed2", "nb/seed1", "nb/seed2"]
    assert all(run.done for run in design.runs())


def test_runs_are_ordinary_training_runs_grouped_for_wandb(tiny_results: tuple[Design, list[str]]) -> None:
    design, _ = tiny_results
    run_dir = design.results_dir / "runs" / "high_lr" / "seed2"
    config = (run_dir / "config.yaml").read_text()
    assert "group: tiny" in config and "job_type: high_lr" in config and "lr: 0.003" in config
    assert {"metrics.json", "predictions_test.csv", "csv"} <= {p.name for p in run_dir.iterdir()}


def test_report_files(tiny_results: tuple[Design, list[str]]) -> None:
    design, _ = tiny_results
    out = design.results_dir
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and set(runs["arm"]) == {"control", "high_lr", "nb"}
    assert {"config_hash", "duration_s", "test/acc", "test/f1_macro", "test/auroc", "seed"} <= set(runs.columns)
    # One hash per arm: seeds do not change it, arms do.
    assert runs.groupby("arm")["config_hash"].nunique().eq(1).all() and runs["config_hash"].nunique() == 3
    summary = (out / "summary.md").read_text()
    assert "| **control** (control)" in summary and "| high_lr |" in summary and "| nb |" in summary
    for name in ("metric_ci", "learning_curves", "roc", "confusion_matrices"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 5000
    # Baselines write the same metric names as the transformer runs.
    nb = json.loads((out / "runs" / "nb" / "seed1" / "metrics.json").read_text())["test"]
    control = json.loads((out / "runs" / "control" / "seed1" / "metrics.json").read_text())["test"]
    assert set(nb) == set(control)
    # ... and are evaluated on exactly the transformer runs' test rows (same labels in the same order).
    for seed in (1, 2):
        rows = [
            pd.read_csv(out / "runs" / arm / f"seed{seed}" / "predictions_test.csv")["label"]
            for arm in ("nb", "control")
        ]
        assert rows[0].tolist() == rows[1].tolist()


def test_interrupted_run_resumes_from_its_checkpoint(
    tmp_path: Path, data_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    design = _tiny(tmp_path, data_cache)
    run = design.runs()[0]
    (run.run_dir / "checkpoints").mkdir(parents=True)
    (run.run_dir / "checkpoints" / "interrupted.ckpt").write_bytes(b"")
    seen = []
    monkeypatch.setattr(runner, "train", lambda cfg: seen.append(cfg) or {})
    runner.execute(design, run)
    assert seen[0].ckpt_path == "last" and seen[0].run_dir == str(run.run_dir)


def test_notebook_executes_on_the_tiny_results(
    tiny_results: tuple[Design, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbclient runs the notebook in a kernel of this very interpreter (the venv), on the tiny design."""
    design, _ = tiny_results
    kernel_dir = tmp_path / "kernels" / "lab-venv"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "lab venv",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("DESIGN_RESULTS", str(design.results_dir))
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    NotebookClient(
        notebook, kernel_name="lab-venv", timeout=120, resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4
    assert any("high_lr" in o.get("data", {}).get("text/markdown", "") for o in outputs)


def test_a_finished_run_made_with_another_config_is_not_silently_skipped(
    tiny_results: tuple[Design, list[str]],
) -> None:
    design, _ = tiny_results
    runner.check_finished_configs(design, design.runs())  # unchanged: fine
    changed = load_design("tiny", results_root=design.results_dir.parent)
    changed.spec.base.extend([f"data.cache_dir={design.spec.base[-1].split('=', 1)[1]}", "data.max_length=64"])
    with pytest.raises(ConfigError, match="different config"):
        runner.check_finished_configs(changed, changed.runs())
