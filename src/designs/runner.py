"""Run every (arm, seed) of a design; finished runs (metrics.json present) are skipped, so a design resumes.

Training runs are ordinary `src.training.train` runs, executed by the design's launcher (this process, a pool of
worker processes, SLURM jobs via submitit or Ray tasks; one GPU each where GPUs are present); baselines and
fusions run afterwards in this process. Which runs to do is decided here, whatever the launcher.
Every run saves the config that produced its numbers (config.yaml; baselines and fusions add their `arm`
spec, a fusion its members' config hashes). A finished run whose saved config is not what the design
composes now is refused (training) or redone (baselines and fusions: they are cheap).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from src.config import to_yaml
from src.designs.baselines import run_baseline
from src.designs.design_spec import Design, RunSpec
from src.designs.fusion import Member, run_fusion
from src.designs.launchers import launch, run_here
from src.errors import ConfigError
from src.provenance import git_state
from src.reporting.plan import PLAN_FILE, plan_changes, plan_hash
from src.reporting.results import comparable, config_hash
from src.rundir import atomic_write_text, newest_checkpoint, read_config, upgraded
from src.training import train

if TYPE_CHECKING:
    from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


def design_record(design: Design) -> dict[str, Any]:
    """The expanded design as plain data: what results/<design>/design.yaml holds and the plan hash is of."""
    record = {"name": design.name, **asdict(design.spec), "arms": {n: a.record() for n, a in design.arms.items()}}
    return OmegaConf.to_container(OmegaConf.create(record))


def write_design_record(design: Design) -> None:
    """results/<design>/design.yaml: the expanded design, so results can be read without configs/."""
    design.results_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(design.results_dir / "design.yaml", OmegaConf.to_yaml(OmegaConf.create(design_record(design))))


def freeze_plan(design: Design, new_iteration: bool = False) -> str:
    """Freeze the design's plan hash in results/<design>/plan.json before its first run; a changed plan (or runs
    without a frozen plan) is refused unless `new_iteration`, which re-freezes it and records the runs it reuses."""
    record, path = design_record(design), design.results_dir / PLAN_FILE
    digest = plan_hash(record)
    frozen = json.loads(path.read_text()) if path.is_file() else None
    if frozen and frozen["plan_hash"] == digest:
        return digest
    finished = sum(r.done for r in design.runs())
    if finished and not new_iteration:
        was = yaml.safe_load((design.results_dir / "design.yaml").read_text())
        why = (f"its plan changed since it was frozen ({plan_changes(was, record)})" if frozen
               else "its results were made before its plan was frozen")
        raise ConfigError(f"Design '{design.name}' has {finished} finished run(s) and {why}. Pass new_iteration=true "
                          "(make design ARGS=new_iteration=true) to start a new iteration, which its report will "
                          "log as such, or restore the plan.")
    state = git_state()
    record = {"plan_hash": digest, "frozen_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": state["commit"], "dirty": state["dirty"], "finished_runs": finished}
    design.results_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    log.info("Design %s: plan %s frozen (%d finished run(s) reused).", design.name, digest, finished)
    return digest


def arm_spec(design: Design, run: RunSpec) -> dict[str, Any]:
    """What defines a baseline or fusion run besides the base config: saved under `arm:` in its config.yaml."""
    arm = run.arm
    if arm.kind == "baseline":
        return {
            "kind": arm.kind,
            "baseline": arm.baseline,
            "args": dict(arm.args),
            "select": dict(arm.select),
            "metric": design.spec.selection_metric,  # what `select` is chosen by, on validation
        }
    members = [design.run_of(name, run.seed) for name in arm.members]
    # A member not finished (yet, or again after a change) has no hash: a fusion of its earlier run is stale.
    hashes = {m.arm.name: config_hash(m.run_dir) if m.done else None for m in members}
    return {"kind": arm.kind, "fusion": arm.fusion, "members": hashes}


def run_config(design: Design, run: RunSpec) -> DictConfig:
    """What a run saves as config.yaml: its composed config, plus the `arm` spec of a baseline or fusion."""
    cfg = design.compose_run(run)
    if run.arm.kind != "train":
        with open_dict(cfg):
            cfg.arm = arm_spec(design, run)
    return cfg


def is_stale(design: Design, run: RunSpec) -> bool:
    """The run's saved config.yaml is missing (an older version's run) or not what the design composes now."""
    saved = read_config(run.run_dir)
    now = comparable(yaml.safe_load(to_yaml(run_config(design, run))))
    return saved is None or comparable(upgraded(saved)) != now


def check_finished_configs(design: Design, runs: list[RunSpec]) -> list[RunSpec]:
    """Refuse to skip finished training runs made with another config; return such baselines and fusions."""
    stale = [r for r in runs if r.done and is_stale(design, r)]
    trained = [str(r.run_dir) for r in stale if r.arm.kind == "train"]
    if trained:
        raise ConfigError(
            f"{len(trained)} finished run(s) of design '{design.name}' were made with a different config than the "
            f"design composes now (an arm, the base or a preset changed): {', '.join(trained)}. "
            "Delete those run directories to rerun them, or restore the config."
        )
    return stale


def execute(design: Design, run: RunSpec) -> dict[str, Any]:
    """Run one (arm, seed): train, fit a baseline or fuse members; returns its metrics summary."""
    if run.arm.kind == "train":
        return train_run(design, run)
    cfg = run_config(design, run)
    arm = OmegaConf.to_container(cfg.arm)  # read back from the config it saves: that config made the numbers
    if run.arm.kind == "baseline":
        return run_baseline(arm["baseline"], arm["args"], cfg, run.run_dir, select=arm["select"], metric=arm["metric"])
    members = [member_of(design, name, run.seed) for name in arm["members"]]
    return run_fusion(arm["fusion"], members, cfg, run.run_dir)


def train_run(design: Design, run: RunSpec, callbacks: Sequence[Callback] = (), test: bool = True) -> dict[str, Any]:
    """Train one run; an interrupted one resumes from its last/interrupted checkpoint in its own run dir."""
    resume = ["ckpt_path=last"] if newest_checkpoint([run.run_dir]) is not None else []
    return train(design.compose_run(run, resume), callbacks, test)


def member_of(design: Design, arm: str, seed: int) -> Member:
    """The run of training arm `arm` at `seed`, as a fusion member."""
    spec = design.run_of(arm, seed)
    return Member(spec.run_dir, design.compose_run(spec))


def _execute_in_worker(design: Design, run: RunSpec) -> str:
    """What a launcher calls for one run (module-level: it is pickled to workers, jobs and tasks)."""
    execute(design, run)
    return str(run.run_dir)


def run_design(design: Design, select: list[RunSpec] | None = None) -> list[RunSpec]:
    """Run the missing runs of the design (or of `select`) on its launcher; returns the runs that failed."""
    design.check_configs()
    for run in check_finished_configs(design, select or design.runs()):
        log.warning("Redoing %s: its saved config.yaml is missing or not what the design composes now.", run.run_dir)
        (run.run_dir / "metrics.json").unlink()
    write_design_record(design)
    pending = [r for r in (select or design.runs()) if not r.done]
    log.info(
        "Design %s: %d runs to do, %d already finished.",
        design.name,
        len(pending),
        len(select or design.runs()) - len(pending),
    )
    # Waves: independent training runs, training runs that use them ({arm:NAME}), then baselines and fusions.
    waves = [
        [r for r in pending if r.arm.kind == "train" and not r.arm.needs],
        [r for r in pending if r.arm.kind == "train" and r.arm.needs],
        [r for r in pending if r.arm.kind != "train"],
    ]
    failed: list[RunSpec] = []
    for index, wave in enumerate(waves):
        blocked = {(r.arm.name, r.seed) for r in failed}
        ready = [r for r in wave if not any((m, r.seed) in blocked for m in (*r.arm.needs, *r.arm.members))]
        calls = [(design, r) for r in ready]
        labels = [f"{r.arm.name}/seed{r.seed}" for r in ready]
        if index < 2:  # training runs go to the launcher; baselines and fusions are cheap: here
            failures = launch(design.spec.launcher, _execute_in_worker, calls, labels, design.results_dir)
        else:
            failures = run_here(_execute_in_worker, calls, labels)
        failed += [ready[i] for i in failures]
    return failed
