"""Train, validate and test one configured run.

    python -m src.train experiment=imdb_minilm trainer.max_epochs=1 model.optimizer.lr=3e-5

Each run writes runs/<experiment>/<timestamp>/: config.yaml, checkpoints/, csv/metrics.csv,
figures/, predictions_test.csv, metrics.json (and wandb/ when W&B is on).

torch, transformers, datasets and lightning are imported inside the functions that use them, after the config
is composed and checked: a config error is reported in well under a second, not after ~10 s of imports.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from src.cli import entry_point
from src.config import compose, to_object, to_yaml
from src.errors import ConfigError
from src.instantiate import instantiate
from src.schemas import RunConfig, TrainerConfig
from src.validation import check_buildable

if TYPE_CHECKING:
    import lightning as L
    import numpy as np
    from lightning.pytorch.callbacks import Callback

log = logging.getLogger("src.train")
RUNS_ROOT = Path("runs")
CHECKPOINT_NAMES = ("last.ckpt", "interrupted.ckpt")
# DDP worker processes re-run this script; they find the parent's run dir in this variable.
RUN_DIR_ENV = "LAB_RUN_DIR"


def newest_checkpoint(run_dirs: list[Path]) -> Path | None:
    """The most recently written last/interrupted checkpoint among `run_dirs`."""
    found = [d / "checkpoints" / n for d in run_dirs for n in CHECKPOINT_NAMES if (d / "checkpoints" / n).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def launcher_run_id() -> str | None:
    """An id shared by all processes that torchrun or srun started together (None for one process),
    so that every rank of a multi-node run writes to the same run directory."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "TORCHELASTIC_RUN_ID" in os.environ:
        if os.environ["TORCHELASTIC_RUN_ID"] == "none":
            raise ConfigError("torchrun without --rdzv-id: pass run_dir=<shared path> (or --rdzv-id=<id>) so "
                              "that every process writes to the same run directory.")
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        return f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}"
    return None


def resolve_run_dir_and_ckpt(cfg: DictConfig) -> tuple[Path, str | None]:
    """Where this run writes, and which checkpoint it resumes from (ckpt_path: null | last | <path>)."""
    if cfg.ckpt_path == "last":
        candidates = [Path(cfg.run_dir)] if cfg.run_dir else sorted((RUNS_ROOT / cfg.experiment).glob("*"))
        ckpt = newest_checkpoint(candidates)
        if ckpt is None:
            raise ConfigError(f"ckpt_path=last but no last/interrupted checkpoint exists under "
                              f"{cfg.run_dir or RUNS_ROOT / cfg.experiment}. Start a fresh run without ckpt_path.")
        return ckpt.parent.parent, str(ckpt)
    if cfg.ckpt_path is not None:
        ckpt = Path(cfg.ckpt_path)
        if not ckpt.is_file():
            raise ConfigError(f"ckpt_path={ckpt} does not exist.")
        return (Path(cfg.run_dir) if cfg.run_dir else ckpt.parent.parent), str(ckpt)
    if cfg.run_dir:
        return Path(cfg.run_dir), None
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV]), None
    if launcher_run_id():
        return RUNS_ROOT / cfg.experiment / launcher_run_id(), None
    return RUNS_ROOT / cfg.experiment / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f"), None


def build_callbacks(specs: Mapping[str, Any], run_dir: Path) -> list[Callback]:
    """Every configured callback in config order (null entries are off); a class that takes `dirpath` gets the
    run's checkpoints directory, one that takes `run_dir` the run directory."""
    return [instantiate(spec, f"callbacks.{name}", run_dir=run_dir, dirpath=run_dir / "checkpoints")
            for name, spec in specs.items() if spec is not None]


def trainer_arguments(trainer: TrainerConfig, run_dir: Path) -> dict[str, Any]:
    """Keyword arguments of lightning.Trainer from `trainer.*` (null ones left to Lightning), the profiler built."""
    kwargs = {key: value for key, value in vars(trainer).items() if value is not None}
    if isinstance(trainer.profiler, Mapping):
        kwargs["profiler"] = instantiate(trainer.profiler, "trainer.profiler", dirpath=run_dir)
    return kwargs


def build_trainer(cfg: RunConfig, run_dir: Path, loggers: list[Any]) -> L.Trainer:
    """The Lightning Trainer of `trainer.*`, with the configured callbacks and profiler."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from src.callbacks.epoch_seed import EpochSeed

    specs = dict(cfg.callbacks)
    if not cfg.trainer.enable_progress_bar:
        specs.pop("progress_bar", None)  # Lightning refuses a progress-bar callback when bars are off
    callbacks = build_callbacks(specs, run_dir) + [EpochSeed(cfg.seed)]
    try:
        return L.Trainer(default_root_dir=str(run_dir), logger=loggers, callbacks=callbacks,
                         **trainer_arguments(cfg.trainer, run_dir))
    except MisconfigurationException as err:
        raise ConfigError(f"Bad trainer settings: {err}") from None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then test the best checkpoint; return (and save) the final metrics."""
    check_buildable(cfg)  # imports only the configured classes' modules: first, so their errors come fast
    import lightning as L
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from src.datamodules.text_classification import TextClassificationDataModule
    from src.loggers import build_loggers, log_figures
    from src.modules.distillation import build_classifier
    from src.modules.model_builder import load_tokenizer

    run_dir, ckpt_path = resolve_run_dir_and_ckpt(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:
        save_config(cfg, run_dir)
    run = to_object(cfg)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    loggers = build_loggers(run, run_dir, f"{cfg.experiment}-{run_dir.name}", resolved)
    trainer = build_trainer(run, run_dir, loggers)  # before the data and the model: its errors come first
    L.seed_everything(cfg.seed, workers=True)
    started = time.perf_counter()

    tokenizer = load_tokenizer(run.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    if rank_zero_only.rank == 0:
        datamodule.save_label_mapping(run_dir)
    model = build_classifier(resolved["model"], list(cfg.data.label_names), class_weights=datamodule.class_weights)

    os.environ[RUN_DIR_ENV] = str(run_dir)  # inherited by the processes a DDP launcher starts
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:
        os.environ.pop(RUN_DIR_ENV, None)
    best = _best_checkpoint(trainer)
    # The checkpoint was chosen on validation; its validation scores are what designs select on.
    trainer.validate(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
    validation = _metrics(trainer, "val/")
    trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
    log_figures(loggers, model.test_figures)

    summary = {"experiment": cfg.experiment, "seed": cfg.seed, "run_dir": str(run_dir),
               "best_checkpoint": best, "duration_s": time.perf_counter() - started,
               "epochs": trainer.current_epoch, "global_step": trainer.global_step,
               "parameters": model.parameter_counts, "validation": validation, "test": _metrics(trainer, "test/")}
    if rank_zero_only.rank == 0:
        _write_outputs(run_dir, summary, {"validation": model.validation_predictions,
                                          "test": model.test_predictions}, list(cfg.data.label_names))
    return summary


def _metrics(trainer: L.Trainer, prefix: str) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint by the monitored metric when one was saved, else the current weights."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None


def save_config(cfg: DictConfig, run_dir: Path) -> None:
    (run_dir / "config.yaml").write_text(to_yaml(cfg))


def _write_outputs(run_dir: Path, summary: dict[str, Any], predictions: dict[str, tuple[Any, Any]],
                   label_names: list[str]) -> None:
    """metrics.json and predictions_<split>.csv (probabilities per class, label, prediction)."""
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    for split, (probs, labels) in predictions.items():
        save_predictions(run_dir / f"predictions_{split}.csv", probs.numpy(), labels.numpy(), label_names)


def save_predictions(path: Path, probs: np.ndarray, labels: np.ndarray, label_names: list[str]) -> None:
    """A predictions CSV: label, pred, prob_<class>... (read back by src.experiments for statistics/fusion)."""
    import numpy as np

    header = ",".join(["label", "pred", *(f"prob_{name}" for name in label_names)])
    table = np.column_stack([labels, probs.argmax(1), probs])
    fmt = ["%d", "%d"] + ["%.6f"] * probs.shape[1]
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt=fmt)


def print_metrics(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Test metrics — {summary.get('experiment', '')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(summary["test"].items()):
        table.add_row(key, f"{value:.4f}")
    Console().print(table)


@entry_point(log)
def main(args: list[str]) -> int:
    summary = train(compose(args))
    from lightning.fabric.utilities.rank_zero import rank_zero_only  # set up by train()

    if rank_zero_only.rank == 0:
        print_metrics(summary)
        print(f"Run directory: {summary['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
