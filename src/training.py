"""Train, validate and test one configured run (`train`); test a checkpoint again (`evaluate`).

The library half of `python -m src.cli.train` / `src.cli.eval`. Each run writes runs/<experiment>/<timestamp>/
(see src.rundir): config.yaml, labels.json, checkpoints/, csv/metrics.csv, figures/, predictions_<split>.csv,
metrics.json (and wandb/ when W&B is on).

torch, transformers, datasets and lightning are imported inside the functions that use them, after the config
is composed and checked: a config error is reported in well under a second, not after ~10 s of imports.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from src import rundir
from src.builders import (
    build_datamodule,
    build_model,
    build_tokenizer,
    build_trainer,
    check_buildable,
    evaluation_trainer,
)
from src.config import to_object
from src.hardware import PrecisionChoice, choose_precision
from src.provenance import command_line, write_provenance
from src.run import Run

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import Logger

    from src.schemas import RunConfig


def train(cfg: DictConfig, callbacks: Sequence[Callback] = (), test: bool = True) -> dict[str, Any]:
    """Fit, then validate and (unless `test` is false: a search trial) test the best checkpoint; return (and save)
    the final metrics. `callbacks` are added to the configured ones (a search trial's pruning callback)."""
    check_buildable(cfg)  # first: its errors come before any data, model or Trainer work
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    run_dir, ckpt_path = rundir.resolve_run_dir_and_ckpt(cfg)
    _check_checkpoint_labels(cfg, ckpt_path)
    # One run per directory; the processes a DDP launcher starts for the other ranks belong to rank 0's run.
    with rundir.exclusive(run_dir) if rank_zero_only.rank == 0 else nullcontext():
        return _train_in(cfg, run_dir, ckpt_path, callbacks, test)


def _check_checkpoint_labels(cfg: DictConfig, ckpt_path: str | None) -> None:
    """Every checkpoint the run loads (the one it resumes, model.init_checkpoint, a KD teacher) has its labels."""
    for key, path in (("ckpt_path", ckpt_path), ("model.init_checkpoint", cfg.model.init_checkpoint),
                      ("model.distillation.teacher_ckpt", cfg.model.distillation.teacher_ckpt)):
        if path:
            rundir.check_checkpoint_labels(path, cfg.data.label_names, key)


def _train_in(cfg: DictConfig, run_dir: Path, ckpt_path: str | None, callbacks: Sequence[Callback],
              test: bool) -> dict[str, Any]:
    """`train` in its resolved run directory, which this process holds."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from src.loggers import build_loggers, finishing_wandb

    run_dir.mkdir(parents=True, exist_ok=True)
    run = to_object(cfg)
    precision = announce_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    wandb_id = None
    if rank_zero_only.rank == 0:
        wandb_id = _prepare_run_dir(cfg, run_dir, resuming=ckpt_path is not None)
        write_provenance(run_dir, command_line(), precision=asdict(precision))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    loggers = build_loggers(run, run_dir, f"{cfg.experiment}-{run_dir.name}", resolved, wandb_id,
                            resume=ckpt_path is not None)
    with finishing_wandb(loggers):
        return _fit_and_evaluate(cfg, run, run_dir, ckpt_path, loggers, callbacks, test)


def _fit_and_evaluate(cfg: DictConfig, run: RunConfig, run_dir: Path, ckpt_path: str | None, loggers: list[Logger],
                      callbacks: Sequence[Callback], test: bool) -> dict[str, Any]:
    """Fit, then validate and test the best checkpoint with the run's loggers; write and return its summary."""
    import lightning as L
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from src.loggers import log_figures

    trainer = build_trainer(run, run_dir, loggers, callbacks)  # before the data and the model: its errors come first
    L.seed_everything(cfg.seed, workers=True)
    started = time.perf_counter()

    tokenizer = build_tokenizer(cfg)
    datamodule = build_datamodule(cfg, tokenizer)
    model = build_model(cfg, tokenizer, class_weights=datamodule.class_weights)

    os.environ[rundir.RUN_DIR_ENV] = str(run_dir)  # inherited by the processes a DDP launcher starts
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:
        os.environ.pop(rundir.RUN_DIR_ENV, None)
    # The fit's progress, read now: BatchSizeFinder searches again at validate / test and restores loop states there.
    progress = {"epochs": trainer.current_epoch, "global_step": trainer.global_step}
    best = _best_checkpoint(trainer)
    # The checkpoint was chosen on validation; its validation scores are what designs select on.
    trainer.validate(model, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)
    validation = _metrics(trainer, "val/")
    predictions = {"validation": model.validation_predictions}
    if test:
        trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)
        log_figures(loggers, model.test_figures)
        predictions["test"] = model.test_predictions

    summary = {"experiment": cfg.experiment, "seed": cfg.seed, "run_dir": str(run_dir),
               "best_checkpoint": best, "duration_s": time.perf_counter() - started, **progress,
               "parameters": model.parameter_counts, "validation": validation, "test": _metrics(trainer, "test/")}
    if rank_zero_only.rank == 0:
        _write_outputs(run_dir, summary, predictions, list(cfg.data.label_names))
    return summary


def announce_precision(precision: str, accelerator: str) -> PrecisionChoice:
    """Print the run's precision and the hardware that decided it (warn when it cannot run fast here)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    choice = choose_precision(precision, accelerator)
    if rank_zero_only.rank == 0:
        log.info(f"Precision: {choice.precision} ({choice.reason})")
        if choice.warning:
            log.warning(choice.warning)
    return choice


def _prepare_run_dir(cfg: DictConfig, run_dir: Path, resuming: bool) -> str | None:
    """Write config.yaml and labels.json, drop what killed writes left; the W&B run id when W&B is on (rank 0)."""
    rundir.save_config(cfg, run_dir)
    rundir.save_labels(run_dir, list(cfg.data.label_names))
    if resuming:
        rundir.remove_partial_writes(run_dir)
    return rundir.wandb_run_id(run_dir, resuming) if cfg.logger.wandb.enabled else None


def _metrics(trainer: L.Trainer, prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint by the monitored metric when one was saved, else the current weights."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from src.callbacks.checkpoint import MidEpochCheckpoint

    chosen = [c for c in trainer.checkpoint_callbacks if not isinstance(c, MidEpochCheckpoint)]
    if chosen and isinstance(chosen[0], ModelCheckpoint) and chosen[0].best_model_path:
        return chosen[0].best_model_path
    return None


def _write_outputs(run_dir: Path, summary: dict[str, Any], predictions: dict[str, tuple[Any, Any]],
                   label_names: list[str]) -> None:
    """predictions_<split>.csv (probabilities per class, label, prediction), then metrics.json (marks it done)."""
    for split, (probs, labels) in predictions.items():
        rundir.save_predictions(run_dir, split, probs.numpy(), labels.numpy(), label_names)
    rundir.write_metrics(run_dir, summary)


def evaluate(ckpt: Path, overrides: list[str], out: Path | None = None) -> dict[str, Any]:
    """Test-split metrics of `ckpt` on its run's data (or `overrides`), written as JSON (default
    <run>/eval/<checkpoint name>.json, so each checkpoint keeps its own)."""
    run = Run.open(ckpt, overrides)
    cfg = run.cfg  # a missing file, a bad key or other labels are refused here, before Lightning is imported
    import lightning as L

    L.seed_everything(cfg.seed, verbose=False)
    model = run.load_classifier()
    datamodule = build_datamodule(cfg, run.tokenizer)
    eval_dir = run.run_dir / "eval"
    # The run's own precision (resolved when it was composed), so the test metrics it logged are reproduced.
    trainer = evaluation_trainer(cfg, eval_dir)
    (results,) = trainer.test(model, datamodule=datamodule, verbose=False)
    summary = {"checkpoint": str(ckpt), "experiment": cfg.experiment, "test": {k: float(v) for k, v in results.items()}}
    out = out or eval_dir / f"{ckpt.stem}.json"
    rundir.write_metrics(out.parent, summary, out.name)
    return summary
