"""Checkpoints a run resumes from: `last.ckpt` of the last epoch, `step-<N>.ckpt` every few steps or minutes
mid-epoch, and `interrupted.ckpt` on Ctrl-C or a crash.

Lightning 2.6 writes `last.ckpt` only at steps where a top-k checkpoint was saved, so once the
monitored metric stops improving `last.ckpt` goes stale and `ckpt_path=last` would resume from an
old epoch. `LastEpochCheckpoint` refreshes it after every validation (with private ModelCheckpoint
methods: pyproject.toml bounds lightning < 2.7 for them).

Every checkpoint holds the train loader's position (a torchdata StatefulDataLoader whose sampler is
stateful, src/datamodules/samplers.py; Lightning saves its state in the fit loop), so a resume from a
mid-epoch checkpoint continues with the next unseen batch.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from src.errors import ConfigError
from src.rundir import atomic_open


class LastEpochCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` (best top-k by the monitored metric) + a `last.ckpt` written every validation."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        # When validation ends an epoch, the top-k save comes at train-epoch end: refreshing last.ckpt
        # here first would mark this step as saved and skip the best checkpoint.
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._refresh_last(trainer)

    def _refresh_last(self, trainer: L.Trainer) -> None:
        stale = self._last_global_step_saved != trainer.global_step
        if self.save_last and stale and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class MidEpochCheckpoint(ModelCheckpoint):
    """`step-<global step>.ckpt` every `every_n_train_steps` optimizer steps or `every_minutes` minutes, whichever
    comes first (either may be null), mid-epoch included; only the newest one is kept."""

    def __init__(self, dirpath: str | Path, every_n_train_steps: int | None = 40, every_minutes: float | None = 2.0,
                 filename: str = "step-{step:06d}") -> None:
        if not every_n_train_steps and not every_minutes:
            raise ConfigError("MidEpochCheckpoint needs every_n_train_steps and/or every_minutes; switch it off "
                              "with callbacks.mid_epoch_checkpoint=null instead.")
        super().__init__(dirpath=dirpath, filename=filename, monitor=None, save_top_k=1, save_last=False,
                         every_n_train_steps=every_n_train_steps or 0, auto_insert_metric_name=False,
                         save_on_train_epoch_end=False, enable_version_counter=False)
        # ModelCheckpoint's batch-end test already fires on either trigger; only its constructor refuses both.
        self._train_time_interval = timedelta(minutes=every_minutes) if every_minutes else None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Training is over and the run's `last.ckpt` is newer: the step checkpoint would only take disk space."""
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        if self.best_model_path and last and Path(last).is_file() and last != self.best_model_path:
            trainer.strategy.remove_checkpoint(self.best_model_path)
            self.best_model_path = ""


class InterruptCheckpoint(Callback):
    """Saves `<dirpath>/<filename>.ckpt` when training stops on Ctrl-C or an exception; `ckpt_path=last` resumes it.

    Not Lightning's OnExceptionCheckpoint: with that one configured, every fresh `fit` warns twice while it looks
    for a checkpoint to resume by itself (src.rundir decides what to resume), and it saves without `weights_only`.

    An exception can come after a batch was fetched but before it was trained on; the loader has then moved past
    a batch that Lightning's progress will replay on resume. So this checkpoint carries the loader state of the
    last completed batch instead of the live one.

    A run stopped before its first optimizer step (a failed start: missing data, an error in setup) has no
    progress to keep, and writes nothing: an untrained `interrupted.ckpt` would look like progress to resume.
    """

    def __init__(self, dirpath: str | Path, filename: str = "interrupted") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self._loader_state: list[dict[str, Any]] | None = None
        self._saving = False
        self._start_step: int | None = None  # the global step training started (or resumed) at

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_step = trainer.global_step
        self._remember_loader_state(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._remember_loader_state(trainer)

    def _remember_loader_state(self, trainer: L.Trainer) -> None:
        loader = trainer.fit_loop._combined_loader
        self._loader_state = loader._state_dicts() if loader is not None else None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if self._start_step is None or trainer.global_step == self._start_step:
            return  # no optimizer step in this process: nothing to keep (the resumed-from checkpoint still exists)
        self._saving = True
        try:
            trainer.save_checkpoint(self.path, weights_only=False)
        finally:
            self._saving = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        loop_state = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        if self._saving and self._loader_state and "combined_loader" in loop_state:
            loop_state["combined_loader"] = self._loader_state


class RestoreLoaderState(Callback):
    """Resumes the train loader at its checkpointed position, in the order of the checkpointed epoch.

    Lightning builds the resumed loader's iterator before it sets the samplers' epoch (that comes at the
    epoch's start). A sampler that draws its order when iterated — DDP's DistributedSampler(Wrapper) —
    then replays epoch 0's order in any later epoch: a run resumed mid-epoch 2 re-saw and skipped batches.
    And when an LR schedule reads `trainer.estimated_stepping_batches` in configure_optimizers (this
    project's do), Lightning builds the loader before the checkpoint is restored and never loads its state
    (Lightning issue #20550). So at train start this sets the epoch, loads the checkpoint's loader state
    and restarts the iterator, as Lightning's own resume path would with the epoch already set."""

    def __init__(self) -> None:
        self._states: list[dict[str, Any]] = []

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
                           ) -> None:
        self._states = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {}).get(
            "combined_loader", [])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fit_loop, states = trainer.fit_loop, self._states
        self._states = []
        # Lightning's condition for loading a loader state: an epoch left unfinished (or a max_steps run).
        if not states or not fit_loop.restarting or None in (fit_loop._combined_loader, fit_loop._data_fetcher):
            return
        for loader in fit_loop._combined_loader.flattened:
            _set_sampler_epoch(loader, fit_loop.epoch_progress.current.processed)
        fit_loop._combined_loader._load_state_dicts(states)
        fit_loop._combined_loader_states_to_load = []
        iter(fit_loop._data_fetcher)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made crash-safe for local paths: `torch.save` streams into a temporary file
    beside the target, which is flushed and renamed over it (src.rundir.atomic_open). Lightning's own writer
    builds the whole checkpoint in memory, then stages it in the system temp directory and moves it: a copy, not
    a rename, when that directory is on another filesystem, so a kill mid-copy left a truncated checkpoint."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_open(Path(path), "wb") as file:
            torch.save(checkpoint, file)
