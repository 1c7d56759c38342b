"""Slow end-to-end designs: every fusion method as an arm over real tiny checkpoints; a distilled arm."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.designs import runner
from src.designs.design_spec import load_design
from src.reporting.summary import write_report
from src.rundir import read_predictions

pytestmark = pytest.mark.slow


def test_tiny_fusion_design_end_to_end(tmp_path: Path, data_cache: Path) -> None:
    design = load_design("tiny_fusion", results_root=tmp_path)
    design.spec.base.append(f"data.cache_dir={data_cache}")
    assert runner.run_design(design) == []
    write_report(design.results_dir, n_resamples=100)
    runs = pd.read_csv(design.results_dir / "runs.csv").set_index("arm")
    assert set(runs.index) == {"a", "b", "weighted_average", "majority_vote", "stacking", "soup"}
    for method in ("weighted_average", "majority_vote", "stacking", "soup"):
        probs, labels = read_predictions(design.results_dir / "runs" / method / "seed1")
        assert probs.shape == (64, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
        assert labels.tolist() == read_predictions(design.results_dir / "runs" / "a" / "seed1")[1].tolist()
    # Validation predictions were computed once with each member's checkpoint, for the fitted methods.
    assert (design.results_dir / "runs" / "a" / "seed1" / "predictions_validation.csv").is_file()
    assert "| soup |" in (design.results_dir / "summary.md").read_text()


def test_an_arm_can_distil_from_another_arms_run(tmp_path: Path, data_cache: Path) -> None:
    path = tmp_path / "kd.yaml"
    path.write_text(f"""
base: [experiment=imdb_tiny, callbacks=default, trainer.max_epochs=1, data.limit_train=64, data.limit_val=32,
       data.limit_test=32, trainer.enable_progress_bar=false, logger=csv, data.cache_dir={data_cache}]
seeds: [1]
control: teacher
arms:
  teacher: []
  student: ["model.distillation.teacher_ckpt={{arm:teacher}}/checkpoints/last.ckpt"]
""")
    design = load_design(path, results_root=tmp_path)
    assert runner.run_design(design) == []
    config = (design.results_dir / "runs" / "student" / "seed1" / "config.yaml").read_text()
    assert f"{design.results_dir}/runs/teacher/seed1/checkpoints/last.ckpt" in config
    assert (design.results_dir / "runs" / "student" / "seed1" / "metrics.json").is_file()


def test_a_pool_of_two_worker_processes_runs_the_tiny_design(tmp_path: Path, data_cache: Path) -> None:
    design = load_design("tiny", results_root=tmp_path)
    design.spec.base.append(f"data.cache_dir={data_cache}")
    design.spec.launcher.workers = 2
    assert runner.run_design(design) == []
    assert all(run.done for run in design.runs())
    assert pd.read_csv(write_report(design.results_dir, n_resamples=100)["runs"]).shape[0] == 6
