"""Stop a run whose training loss is NaN or infinite, before that step changes the weights.

Lightning has no check on the loss itself (EarlyStopping's `check_finite` watches a monitored metric, logged
at most once per validation); a diverged run would otherwise train on, validate and test NaN weights, and
exit 0 with NaN in metrics.json. Always on (src.builders.build_trainer).
"""

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from src.errors import NonFiniteLossError


class FiniteLoss(Callback):
    """Raise `NonFiniteLossError` (one line: step, value, learning rate, likely causes) on a non-finite loss."""

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        value = loss.detach().float().item()
        # Every rank decides together: one rank stopping alone would leave the others waiting in backward.
        if trainer.strategy.reduce_boolean_decision(math.isfinite(value), all=True):
            return
        shown = "NaN or infinite on another rank" if math.isfinite(value) else value
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        raise NonFiniteLossError(
            f"The training loss is {shown} at optimizer step {trainer.global_step + 1} (epoch "
            f"{trainer.current_epoch}, learning rate {lr:g}): the learning rate is likely too high (lower "
            "model.optimizer.lr or add warm-up), fp16 overflowed (use trainer.precision=bf16-mixed or 32-true), or "
            "the input holds bad values. Training stopped before this step; no metrics were written.")
