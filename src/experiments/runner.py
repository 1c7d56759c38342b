"""Run every (arm, seed) of a design; finished runs (metrics.json present) are skipped, so a design resumes.

Training runs are ordinary `src.train.train` runs, in this process or in a pool of worker processes
(one GPU each when GPUs are present); baselines and fusions run afterwards in this process.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from typing import Any

import torch
import yaml
from omegaconf import OmegaConf

from src.config import to_yaml
from src.errors import ConfigError
from src.experiments.baselines import run_baseline
from src.experiments.design import Design, RunSpec
from src.experiments.fusion import Member, run_fusion
from src.experiments.results import IGNORED_IN_HASH
from src.train import newest_checkpoint, train

log = logging.getLogger(__name__)


def write_design_record(design: Design) -> None:
    """results/<design>/design.yaml: the expanded design, so results can be read without configs/."""
    design.results_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "name": design.name,
        **asdict(design.spec),
        "arms": {n: a.record() for n, a in design.arms.items()},
    }
    (design.results_dir / "design.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(record)))


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in IGNORED_IN_HASH}


def check_finished_configs(design: Design, runs: list[RunSpec]) -> None:
    """Refuse to skip finished training runs whose saved config is not what the design composes now."""
    stale = [
        r
        for r in runs
        if r.done
        and r.arm.kind == "train"
        and _comparable(yaml.safe_load((r.run_dir / "config.yaml").read_text()))
        != _comparable(yaml.safe_load(to_yaml(design.compose_run(r))))
    ]
    if stale:
        raise ConfigError(
            f"{len(stale)} finished run(s) of design '{design.name}' were made with a different config than the "
            f"design composes now (an arm, the base or a preset changed): {', '.join(str(r.run_dir) for r in stale)}. "
            "Delete those run directories to rerun them, or restore the config."
        )


def execute(design: Design, run: RunSpec) -> dict[str, Any]:
    """Run one (arm, seed): train, fit a baseline or fuse members; returns its metrics summary."""
    if run.arm.kind == "train":
        # An interrupted run resumes from its last/interrupted checkpoint (OnExceptionCheckpoint writes one).
        resume = ["ckpt_path=last"] if newest_checkpoint([run.run_dir]) is not None else []
        return train(design.compose_run(run, resume))
    cfg = design.compose_run(run)
    if run.arm.kind == "baseline":
        return run_baseline(run.arm.baseline, dict(run.arm.args), cfg, run.run_dir)
    members = [member_of(design, name, run.seed) for name in run.arm.members]
    return run_fusion(run.arm.fusion, members, cfg, run.run_dir)


def member_of(design: Design, arm: str, seed: int) -> Member:
    """The run of training arm `arm` at `seed`, as a fusion member."""
    spec = design.run_of(arm, seed)
    return Member(spec.run_dir, design.compose_run(spec))


def _init_worker(devices: Any, threads: int) -> None:
    """Pin a worker process to one GPU (when there are GPUs) and its share of CPU threads."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get())
    torch.set_num_threads(threads)


def _execute_in_worker(design: Design, run: RunSpec) -> str:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    execute(design, run)
    return str(run.run_dir)


def run_design(design: Design, workers: int = 1, select: list[RunSpec] | None = None) -> list[RunSpec]:
    """Run the missing runs of the design (or of `select`); returns the runs that failed."""
    design.check_configs()
    check_finished_configs(design, select or design.runs())
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
        parallel = workers > 1 and len(ready) > 1 and index < 2
        failed += _run_pool(design, ready, workers) if parallel else _run_here(design, ready)
    return failed


def _run_here(design: Design, runs: list[RunSpec]) -> list[RunSpec]:
    failed = []
    for index, run in enumerate(runs, 1):
        log.info("[%d/%d] %s / seed %d", index, len(runs), run.arm.name, run.seed)
        try:
            execute(design, run)
        except Exception:  # noqa: BLE001 - one failed run must not stop the others; reported at the end
            log.exception("Run %s failed", run.run_dir)
            failed.append(run)
    return failed


def _run_pool(design: Design, runs: list[RunSpec], workers: int) -> list[RunSpec]:
    """Training runs in `workers` spawned processes; each gets one GPU when GPUs are present."""
    context = mp.get_context("spawn")
    gpus = torch.cuda.device_count()
    devices = None
    if gpus:
        devices = context.Manager().Queue()
        for index in range(workers):
            devices.put(index % gpus)
    threads = max(1, (os.cpu_count() or 1) // workers)
    failed = []
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(devices, threads)
    ) as pool:
        futures = {pool.submit(_execute_in_worker, design, run): run for run in runs}
        for future in as_completed(futures):
            try:
                log.info("Finished %s", future.result())
            except Exception:  # noqa: BLE001 - reported at the end, the other runs go on
                log.exception("Run %s failed", futures[future].run_dir)
                failed.append(futures[future])
    return failed
