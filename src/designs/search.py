"""Adaptive search: Optuna TPE over a design's `tpe.params`, trials chosen on validation, hopeless ones pruned.

Every trial trains with `tpe.train_seed` (never one of the design's seeds) in results/<design>/trials/trial<k>/
and reads only the validation split. `launcher.workers` search workers run on the design's launcher and share
one Optuna storage: SQLite under results/<design>/search/ by default, a database URL on a cluster. A trial whose
worker died is retried (Optuna's heartbeat) and resumes from the checkpoint in its run directory. The best
trial's parameters become the arm `tpe_best`, which runs on the design's seeds like any arm, so the report
compares it with the control on seeds it was not tuned on (the only runs that read the test split).
"""

import hashlib
import json
import logging
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from src import rundir
from src.designs.design_spec import BEST_ARM, Arm, Design, RunSpec, TpeSchema, distributions_of
from src.designs.launchers import launch
from src.designs.runner import is_stale, train_run
from src.errors import ConfigError
from src.reporting import stats

log = logging.getLogger(__name__)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TRIAL_ATTRS = ("number", "state", "value", "params", "duration")


def storage_url(design: Design) -> str:
    """`tpe.storage`, else an SQLite file in the design's results directory."""
    tpe = _tpe(design)
    return tpe.storage or f"sqlite:///{(design.results_dir / 'search' / 'optuna.db').resolve()}"


def _tpe(design: Design) -> TpeSchema:
    if design.spec.tpe is None:
        raise ConfigError(f"Design '{design.name}' declares no `tpe:` search.")
    return design.spec.tpe


def _storage(design: Design) -> optuna.storages.RDBStorage:
    """The shared storage, with heartbeats: a trial whose worker stopped beating is failed and retried."""
    tpe = _tpe(design)
    url = storage_url(design)
    if url.startswith("sqlite:///"):
        design.results_dir.joinpath("search").mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        heartbeat_interval=tpe.heartbeat_s,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
    )


def definition(design: Design) -> str:
    """What the trials' numbers depend on (base, searched keys, trial seed, selection metric), hashed."""
    tpe = _tpe(design)
    content = [list(design.spec.base), tpe.params, tpe.train_seed, design.spec.selection_metric]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _open_study(design: Design, worker: int = 0) -> optuna.Study:
    """The design's study in its storage, with this worker's seeded TPESampler and the median pruner."""
    tpe = _tpe(design)
    sampler = optuna.samplers.TPESampler(
        seed=tpe.seed + worker, n_startup_trials=tpe.n_startup_trials, constant_liar=True
    )
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=tpe.prune_startup_trials, n_warmup_steps=tpe.prune_warmup_steps)
        if tpe.prune
        else optuna.pruners.NopPruner()
    )
    direction = "maximize" if stats.higher_is_better(design.spec.selection_metric) else "minimize"
    study = optuna.create_study(storage=_storage(design), study_name=design.name, sampler=sampler, pruner=pruner,
                                direction=direction, load_if_exists=True)
    saved = study.user_attrs.get("definition")
    if saved is None:
        study.set_user_attr("definition", definition(design))
    elif saved != definition(design):
        raise ConfigError(
            f"The study '{design.name}' in {storage_url(design)} was searched with another base, `tpe.params`, "
            "`tpe.train_seed` or selection metric. Delete it (and results/<design>/trials/) to search again, or "
            "set `tpe.storage` to a new one."
        )
    return study


def finished(study: optuna.Study) -> int:
    """Trials that count towards `n_trials`: complete or pruned."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_search(design: Design) -> list[int]:
    """Run the missing trials on the design's launcher; add `tpe_best` once `n_trials` have finished.

    Returns the indices of the search workers that failed."""
    tpe = _tpe(design)
    study = _open_study(design)
    workers = min(design.spec.launcher.workers, max(tpe.n_trials - finished(study), 0))
    log.info("TPE search of %s: %d of %d trials finished, %d worker(s).", design.name, finished(study),
             tpe.n_trials, workers)
    calls = [(design, worker) for worker in range(workers)]
    failed = launch(design.spec.launcher, search_worker, calls, [f"search worker {k}" for k in range(workers)],
                    design.results_dir)
    study = _open_study(design)
    write_trials(design, study)
    best = best_trial(study)
    if finished(study) >= tpe.n_trials and best is not None:
        design.arms[BEST_ARM] = Arm(BEST_ARM, "train", tuple(f"{k}={v}" for k, v in best.params.items()))
        log.info("Best trial #%d (%s %.4f): %s", best.number, design.spec.selection_metric, best.value, best.params)
    else:
        log.warning("The TPE search has %d of %d trials: `%s` waits until a rerun finishes it.", finished(study),
                    tpe.n_trials, BEST_ARM)
    return failed


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial with the best validation value (None before one completes)."""
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def search_worker(design: Design, worker: int) -> int:
    """One worker: ask, train and tell trials until the study has `n_trials` finished; the trials it ran."""
    tpe = _tpe(design)
    study = _open_study(design, worker)
    if finished(study) >= tpe.n_trials:
        return 0
    before = len(study.trials)
    study.optimize(
        lambda trial: objective(design, trial, worker),
        callbacks=[optuna.study.MaxTrialsCallback(tpe.n_trials, states=FINISHED)],
    )
    return len(study.trials) - before


def _suggest(trial: optuna.Trial, key: str, distribution: optuna.distributions.BaseDistribution) -> Any:
    """The trial's value of one searched key (the suggest_* call matching its distribution)."""
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(key, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(key, distribution.low, distribution.high, log=distribution.log)
    return trial.suggest_float(key, distribution.low, distribution.high, log=distribution.log)


def trial_run(design: Design, trial: optuna.Trial) -> RunSpec:
    """A trial as a training run: its parameters as overrides, at `train_seed`, in trials/trial<k>/ (k: the
    number of the trial it retries, if any, so a retried trial resumes from that trial's checkpoint)."""
    tpe = _tpe(design)
    params = {key: _suggest(trial, key, dist) for key, dist in distributions_of(tpe.params, "tpe.params").items()}
    frozen = trial.study.get_trials(deepcopy=False)[trial.number]
    original = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
    name = f"trial{trial.number if original is None else original:03d}"
    arm = Arm(name, "train", tuple(f"{k}={v}" for k, v in params.items()))
    return RunSpec(design.name, arm, tpe.train_seed, design.results_dir / "trials" / name)


def objective(design: Design, trial: optuna.Trial, worker: int = 0) -> float:
    """Train the trial on validation only (pruned on its validation curve); its selection metric."""
    from src.callbacks.trial_pruning import TrialPruning

    run = trial_run(design, trial)
    metric = design.spec.selection_metric
    trial.set_user_attr("run_dir", str(run.run_dir.relative_to(design.results_dir)))
    trial.set_user_attr("worker", worker)
    if rundir.read_config(run.run_dir) is not None and is_stale(design, run):
        raise ConfigError(f"{run.run_dir} holds another search's trial: delete results/{design.name}/trials/.")
    if run.done:  # trained, but its worker died before telling the study
        summary = rundir.read_metrics(run.run_dir)
    else:
        summary = train_run(design, run, callbacks=[TrialPruning(trial, metric)], test=False)
    return summary["validation"][metric]


def write_trials(design: Design, study: optuna.Study) -> None:
    """results/<design>/trials.csv: every trial's number, state, validation value, parameters and run folder."""
    table = study.trials_dataframe(attrs=TRIAL_ATTRS)
    if table.empty:
        return
    trials = study.get_trials(deepcopy=False)
    table["last_step"] = [t.last_step for t in trials]
    table["run_dir"] = [t.user_attrs.get("run_dir", "") for t in trials]
    table["worker"] = [t.user_attrs.get("worker", "") for t in trials]
    best = best_trial(study)
    table["best"] = table["number"] == (best.number if best else -1)
    rundir.atomic_write_text(design.results_dir / "trials.csv", table.to_csv(index=False))
