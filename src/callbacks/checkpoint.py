"""Checkpoints a run resumes from: `last.ckpt` of the last epoch, and `interrupted.ckpt` on Ctrl-C or a crash.

Lightning 2.6 writes `last.ckpt` only at steps where a top-k checkpoint was saved, so once the
monitored metric stops improving `last.ckpt` goes stale and `ckpt_path=last` would resume from an
old epoch. `LastEpochCheckpoint` refreshes it after every validation (with private ModelCheckpoint
methods: pyproject.toml bounds lightning < 2.7 for them).
"""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint


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


class InterruptCheckpoint(Callback):
    """Saves `<dirpath>/<filename>.ckpt` when training stops on Ctrl-C or an exception; `ckpt_path=last` resumes it.

    Not Lightning's OnExceptionCheckpoint: with that one configured, every fresh `fit` warns twice while it looks
    for a checkpoint to resume by itself (src.rundir decides what to resume), and it saves without `weights_only`.
    """

    def __init__(self, dirpath: str | Path, filename: str = "interrupted") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
