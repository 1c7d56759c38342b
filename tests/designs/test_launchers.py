"""The tiny design on every launcher: the same runs.csv as the local pool, and a killed design completes only
what is missing (a run with a checkpoint and no metrics.json resumes from it), whatever the launcher."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from src.cli import parse_args
from src.cli.design import DesignOptions, launcher_overrides, main
from src.config import REPO_ROOT
from src.designs import runner
from src.designs.design_spec import DESIGN_DIR, Design, load_design
from src.designs.launchers import Call, LauncherSettings
from src.errors import ConfigError
from src.reporting.results import load_results

SUBMITIT = ["launcher.name=submitit", "launcher.submitit.cluster=local", "launcher.submitit.cpus_per_task=1",
            "launcher.submitit.time_min=10", "launcher.workers=4"]
RAY = ["launcher.name=ray", "launcher.workers=2", "launcher.ray.cpus_per_run=1"]


def _tiny_file(tmp_path: Path, data_cache: Path) -> Path:
    """configs/design/tiny.yaml (2 trained arms x 2 seeds + Naive Bayes) reading the session's data cache."""
    spec = yaml.safe_load((DESIGN_DIR / "tiny.yaml").read_text())
    spec["base"].append(f"data.cache_dir={data_cache}")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run(design: Design, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the design; the labels of the runs its launcher was given."""
    launched: list[str] = []
    launch = runner.launch

    def spy(settings: LauncherSettings, fn: Callable[..., Any], calls: list[Call], labels: list[str],
            results_dir: Path) -> list[int]:
        launched.extend(labels)
        return launch(settings, fn, calls, labels, results_dir)

    monkeypatch.setattr(runner, "launch", spy)
    assert runner.run_design(design) == []
    return launched


def _table(design: Design) -> pd.DataFrame:
    """runs.csv less the wall time."""
    return load_results(design.results_dir).runs.drop(columns="duration_s").reset_index(drop=True)


@pytest.fixture(scope="module")
def local_design(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> Design:
    """The tiny design run in this process with one torch thread, like each job and task below."""
    root = tmp_path_factory.mktemp("local")
    design = load_design(_tiny_file(root, data_cache), results_root=root / "results")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert runner.run_design(design) == []
    finally:
        torch.set_num_threads(threads)
    return design


def _kill_midway(path: Path, cwd: Path) -> None:
    """Start `python -m src.cli.design` on the local pool and SIGKILL its process group once one run has finished."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "src.cli.design", str(path)], cwd=cwd, env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = cwd / "results" / path.stem / "runs" / "control" / "seed1" / "metrics.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert first.is_file(), "the design process ended or timed out before its first run finished"


@pytest.mark.slow  # a design killed and rerun on submitit: ~60 s (make test < 8 min; in make test-all)
def test_killed_design_completes_only_the_missing_runs_on_submitit(
    local_design: Design, tmp_path: Path, data_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _tiny_file(tmp_path, data_cache)
    _kill_midway(path, tmp_path)
    design = load_design(path, results_root=tmp_path / "results", launcher=SUBMITIT)
    finished = {f"{r.arm.name}/seed{r.seed}": r.run_dir / "metrics.json" for r in design.runs() if r.done}
    stamps = {label: metrics.stat().st_mtime_ns for label, metrics in finished.items()}
    # A run that left a checkpoint but no metrics.json (killed after its last checkpoint) must resume from it.
    resumed = design.run_of("control", 1)
    (resumed.run_dir / "metrics.json").unlink()
    del stamps["control/seed1"]
    launched = _run(design, monkeypatch)
    training = [f"{r.arm.name}/seed{r.seed}" for r in design.runs() if r.arm.kind == "train"]
    assert sorted(launched) == sorted(label for label in training if label not in stamps)
    assert {label: finished[label].stat().st_mtime_ns for label in stamps} == stamps  # untouched
    assert yaml.safe_load((resumed.run_dir / "config.yaml").read_text())["ckpt_path"] == "last"
    assert list((design.results_dir / "submitit").glob("*_result.pkl"))  # they ran as submitit jobs
    pd.testing.assert_frame_equal(_table(design), _table(local_design))


@pytest.mark.slow  # Ray's start-up and its niced workers: 140-400 s on the shared 2-core machine (over ~60 s)
def test_ray_runs_the_missing_runs_with_the_same_metrics(
    local_design: Design, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the local results less three runs and the metrics.json of a fourth (it resumes from its checkpoint)."""
    results = shutil.copytree(local_design.results_dir, tmp_path / "results" / local_design.name)
    design = load_design(local_design.results_dir.parent.parent / "tiny.yaml", results_root=tmp_path / "results",
                         launcher=RAY)
    for arm, seed in (("control", 2), ("high_lr", 1), ("high_lr", 2)):
        shutil.rmtree(results / "runs" / arm / f"seed{seed}")
    (results / "runs" / "control" / "seed1" / "metrics.json").unlink()
    launched = _run(design, monkeypatch)
    assert sorted(launched) == ["control/seed1", "control/seed2", "high_lr/seed1", "high_lr/seed2"]
    assert yaml.safe_load((results / "runs" / "control" / "seed1" / "config.yaml").read_text())["ckpt_path"] == "last"
    pd.testing.assert_frame_equal(_table(design), _table(local_design))


def test_submitit_without_slurm_names_the_fix(tmp_path: Path, data_cache: Path) -> None:
    design = load_design(_tiny_file(tmp_path, data_cache), results_root=tmp_path,
                         launcher=["launcher.name=submitit", "launcher.submitit.cluster=slurm"])
    if shutil.which("sbatch"):
        pytest.skip("this machine has SLURM")
    with pytest.raises(ConfigError, match="launcher.submitit.cluster=local"):
        runner.run_design(design)


@pytest.mark.slow  # a 30-epoch run: ~70 s on the shared 2-core machine
def test_a_preempted_submitit_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path: Path, data_cache: Path) -> None:
    """SIGUSR2 (SLURM's pre-emption / time-limit warning, forwarded by submitit's local controller) mid-fit:
    the job is requeued and the run resumes from the checkpoint it left, not from scratch."""
    spec = yaml.safe_load((DESIGN_DIR / "tiny.yaml").read_text())
    spec.update(arms={"control": []}, seeds=[1])
    spec["base"] += [f"data.cache_dir={data_cache}", "trainer.max_epochs=30"]
    path = tmp_path / "preempted.yaml"
    path.write_text(yaml.safe_dump(spec))
    design = load_design(path, results_root=tmp_path / "results", launcher=SUBMITIT)
    run = design.run_of("control", 1)
    jobs = design.results_dir / "submitit"

    def preempt() -> None:
        """Once the run has checkpointed its first epoch, signal the job's task as SLURM would (the task is the
        child of submitit's local controller, whose pid is the job id)."""
        while not (run.run_dir / "checkpoints" / "last.ckpt").is_file():
            time.sleep(0.1)
        job = next(jobs.glob("*_submitted.pkl")).name.split("_")[0]
        task = Path(f"/proc/{job}/task/{job}/children").read_text().split()[0]
        os.kill(int(task), signal.SIGUSR2)

    thread = threading.Thread(target=preempt, daemon=True)
    thread.start()
    assert runner.run_design(design) == []
    thread.join(timeout=5)
    log = next(jobs.glob("*_0_log.err")).read_text()
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log  # submitit's local executor calls it a timeout
    resumed = re.search(r"Restoring states from the checkpoint path at (\S+)", log)
    assert resumed and Path(resumed[1]).parent == run.run_dir / "checkpoints"
    assert yaml.safe_load((run.run_dir / "config.yaml").read_text())["ckpt_path"] == "last"
    assert json.loads((run.run_dir / "metrics.json").read_text())["epochs"] == 30


def test_command_line_launcher_options_override_the_design(caplog: pytest.LogCaptureFixture) -> None:
    options, rest = parse_args(["tiny", "launcher=ray", "workers=3", "launcher.ray.address=auto"], DesignOptions,
                               positional="design", config=True)
    settings = load_design("tiny", launcher=launcher_overrides(options, rest)).spec.launcher
    assert (settings.name, settings.workers, settings.ray.address) == ("ray", 3, "auto")
    assert load_design("tiny").spec.launcher == LauncherSettings()  # tiny.yaml sets none: the local process
    assert main(["tiny", "launcher.ray.adress=auto"]) == 2 and "'launcher.ray.adress'" in caplog.text
    assert main(["tiny", "launcher=slurm"]) == 2 and "Allowed: local, submitit, ray" in caplog.text
