"""Stop an Optuna search trial whose validation curve its study's pruner finds hopeless."""

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class TrialPruning(Callback):
    """Report `monitor` to the trial after every validation of the fit (step = optimizer step) and raise
    optuna.TrialPruned when the pruner says so.

    Hand-written rather than optuna-integration's PyTorchLightningPruningCallback: that package is not a dependency,
    and it reports once per epoch (step = epoch), so validations inside an epoch (val_check_interval < 1, as a
    one-epoch run needs to be pruned at all) would collide on one step."""

    def __init__(self, trial: optuna.trial.Trial, monitor: str) -> None:
        super().__init__()
        self.trial = trial
        self.monitor = monitor

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return  # the validation of the chosen checkpoint after the fit is no point of the curve
        if self.monitor not in trainer.callback_metrics:
            raise KeyError(f"The search's selection metric '{self.monitor}' was not logged by the validation loop.")
        value = float(trainer.callback_metrics[self.monitor])
        self.trial.report(value, step=trainer.global_step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.monitor}={value:.4f} at step {trainer.global_step}")
