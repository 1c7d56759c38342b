"""Optuna TPE search: a tiny design searched by two workers sharing SQLite, its best trial (chosen on validation)
tested against the control on fresh seeds; trials pruned on their validation curve."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from omegaconf import DictConfig

from src.callbacks.trial_pruning import TrialPruning
from src.config import REPO_ROOT
from src.designs import runner, search
from src.designs.design_spec import BEST_ARM, DESIGN_DIR, load_design
from src.errors import ConfigError
from src.reporting.summary import write_report
from src.training import train


def _tiny_tpe(tmp_path: Path, data_cache: Path, **changes: object) -> Path:
    """configs/design/tiny_tpe.yaml reading the session's data cache, with `changes` to its `tpe:`."""
    spec = yaml.safe_load((DESIGN_DIR / "tiny_tpe.yaml").read_text())
    spec["base"].append(f"data.cache_dir={data_cache}")
    spec["tpe"].update(changes)
    path = tmp_path / "tiny_tpe.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow  # two processes each training tiny trials: about 32 s, the slowest test of `make test`
def test_tpe_design_with_two_workers_sharing_sqlite(tmp_path: Path, data_cache: Path) -> None:
    path = _tiny_tpe(tmp_path, data_cache)
    design = load_design(path, results_root=tmp_path / "results")
    assert search.run_search(design) == []
    assert search.storage_url(design) == f"sqlite:///{design.results_dir.resolve()}/search/optuna.db"
    study = optuna.load_study(study_name=design.name, storage=search.storage_url(design))
    trials = study.get_trials(states=search.FINISHED)
    assert len(trials) >= 4 and {t.user_attrs["worker"] for t in trials} == {0, 1}  # two processes, one storage
    lrs = [t.params["model.optimizer.lr"] for t in trials]
    assert len(set(lrs)) == len(lrs)  # distinct trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value)  # val/loss: lower is better
    assert study.best_trial.value == best.value
    assert design.arms[BEST_ARM].overrides == (f"model.optimizer.lr={study.best_trial.params['model.optimizer.lr']}",)
    for trial in complete:  # trained with train_seed, scored on validation; the test split never read
        run_dir = design.results_dir / trial.user_attrs["run_dir"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["seed"] == 0 and metrics["test"] == {} and not (run_dir / "predictions_test.csv").exists()
        assert metrics["validation"]["val/loss"] == trial.value
    # The best trial and the control on the design's seeds, which the search did not use.
    assert runner.run_design(design) == []
    write_report(design.results_dir, n_resamples=100)
    runs = pd.read_csv(design.results_dir / "runs.csv")
    assert sorted(runs["arm"]) == ["control", "control", BEST_ARM, BEST_ARM] and set(runs["seed"]) == {1, 2}
    comparison = pd.read_csv(design.results_dir / "comparisons.csv")
    assert comparison["arm"].tolist() == [BEST_ARM] and comparison["n"].tolist() == [2]
    summary = (design.results_dir / "summary.md").read_text()
    assert f"Best trial: #{study.best_trial.number} " in summary and "compared with the control `control`" in summary
    listed = pd.read_csv(design.results_dir / "trials.csv")
    assert listed["number"].tolist() == [t.number for t in study.trials] and listed["best"].sum() == 1
    for trial in study.trials:
        mark = " (best)" if trial.number == study.best_trial.number else ""
        assert f"| {trial.number}{mark} | {trial.state.name} |" in summary
    # A rerun asks no new trial and keeps the choice; another search definition is refused.
    before = len(study.trials)
    rerun = load_design(path, results_root=tmp_path / "results")
    assert search.run_search(rerun) == [] and rerun.arms[BEST_ARM] == design.arms[BEST_ARM]
    assert len(optuna.load_study(study_name=design.name, storage=search.storage_url(design)).trials) == before
    rerun.spec.tpe.train_seed = 5
    with pytest.raises(ConfigError, match="another base, `tpe.params`, `tpe.train_seed`"):
        search.run_search(rerun)


def test_a_hopeless_trial_is_pruned_on_its_validation_curve(make_cfg: Callable[..., DictConfig]) -> None:
    """A pruner that finds every value hopeless stops the fit at its first validation, reported at that step."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()
    cfg = make_cfg("trainer.max_epochs=2", "data.limit_train=64", "data.limit_val=32", "data.limit_test=32")
    with pytest.raises(optuna.TrialPruned, match="val/f1_macro=.* at step 2"):
        train(cfg, callbacks=[TrialPruning(trial, "val/f1_macro")], test=False)
    assert list(study.trials[0].intermediate_values) == [2]  # 64 rows / batch 32: pruned after epoch 1 of 2
    assert not (Path(cfg.run_dir) / "metrics.json").exists()


@pytest.mark.parametrize(
    ("tpe", "message"),
    [
        ("{params: {}}", "tpe.params"),
        ("{train_seed: 1, params: {model.optimizer.lr: [0.001]}}", "tpe.train_seed"),
        ("{params: {model.optimizer.lr: 3}}", "tpe.params.model.optimizer.lr"),
    ],
)
def test_bad_tpe_searches_fail_with_the_key(tmp_path: Path, tpe: str, message: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"arms": {"a": []}, "control": "a", "seeds": [1, 2]}) + f"tpe: {tpe}\n")
    with pytest.raises(ConfigError, match=message):
        load_design(path)


@pytest.mark.slow  # a search process killed mid-trial, then resumed: 23-35 s on the shared 2-core machine
def test_a_trial_whose_worker_died_is_retried_and_resumes_from_its_checkpoint(tmp_path: Path, data_cache: Path) -> None:
    path = _tiny_tpe(tmp_path, data_cache, n_trials=2, heartbeat_s=1)
    spec = yaml.safe_load(path.read_text())
    spec["base"].append("trainer.max_epochs=4")
    spec["launcher"]["workers"] = 1
    path.write_text(yaml.safe_dump(spec))
    trial0 = tmp_path / "results" / "tiny_tpe" / "trials" / "trial000"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "src.cli.design", str(path)], cwd=tmp_path, env=env,
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (trial0 / "checkpoints" / "last.ckpt").is_file() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the worker dies mid-trial: the trial stays RUNNING, silent
    process.wait()
    time.sleep(3)  # more than two heartbeats
    design = load_design(path, results_root=tmp_path / "results")
    assert search.run_search(design) == []
    study = optuna.load_study(study_name=design.name, storage=search.storage_url(design))
    first = study.trials[0]
    retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number
    retry = next(t for t in study.trials if retried(t) == 0)
    assert first.state == optuna.trial.TrialState.FAIL and retry.params == first.params
    assert retry.user_attrs["run_dir"] == "trials/trial000" and retry.state in search.FINISHED
    assert yaml.safe_load((trial0 / "config.yaml").read_text())["ckpt_path"] == "last"
