"""DDP on CPU (2 processes, gloo): fit + test under `trainer=ddp_cpu`, metrics synced across ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import compose
from src.errors import ConfigError
from src.rundir import launcher_run_id, resolve_run_dir_and_ckpt
from src.training import evaluate

REPO = Path(__file__).resolve().parents[1]
METRICS = ("test/acc", "test/f1_macro", "test/precision", "test/recall", "test/auroc", "test/loss")


@pytest.mark.slow  # two DDP processes: ~20 s (make test < 8 min; in make test-all)
def test_ddp_cpu_test_metrics_equal_a_single_process_evaluation(tmp_path: Path, data_cache: Path) -> None:
    run_dir = tmp_path / "ddp"
    # 64 test rows = 2 ranks x 32: DistributedSampler adds no padding duplicates, so the synced
    # metrics must equal a single-process evaluation of the same checkpoint.
    command = [sys.executable, "-m", "src.cli.train", "experiment=imdb_tiny", "trainer=ddp_cpu",
               f"run_dir={run_dir}", f"data.cache_dir={data_cache}", "data.limit_train=64",
               "data.limit_val=32", "data.limit_test=64", "data.max_length=64", "data.eval_batch_size=16",
               "trainer.max_epochs=1", "logger=csv", "callbacks=none", "trainer.enable_progress_bar=false"]
    done = subprocess.run(command, cwd=REPO, env=os.environ.copy(), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEMBER: 2/2" in done.stderr  # Lightning's log line from the second process joining the group

    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["best_checkpoint"] and Path(summary["best_checkpoint"]).is_file()
    predictions = (run_dir / "predictions_test.csv").read_text().strip().splitlines()
    assert len(predictions) == 1 + 64  # both ranks' rows gathered

    single = evaluate(Path(summary["best_checkpoint"]), [])["test"]
    for key in METRICS:
        assert summary["test"][key] == pytest.approx(single[key], abs=1e-5), key


@pytest.mark.parametrize(("env", "expected"), [
    ({"WORLD_SIZE": "8", "TORCHELASTIC_RUN_ID": "job42"}, "torchrun-job42"),
    ({"SLURM_NTASKS": "16", "SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "0"}, "slurm-1234-0"),
    ({"SLURM_NTASKS": "1", "SLURM_JOB_ID": "1234"}, None),
])
def test_ranks_of_torchrun_and_srun_launches_share_one_run_dir(monkeypatch, env: dict, expected: str | None,
                                                                 tmp_path: Path) -> None:
    for key in ("WORLD_SIZE", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_JOB_ID", "SLURM_STEP_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert launcher_run_id() == expected
    if expected:
        run_dir, _ = resolve_run_dir_and_ckpt(compose(["experiment=imdb_tiny"]))
        assert run_dir == Path("runs") / "imdb_tiny" / expected


def test_torchrun_without_a_rendezvous_id_asks_for_run_dir(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    with pytest.raises(ConfigError, match="run_dir"):
        launcher_run_id()
