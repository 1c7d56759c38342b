"""Gradual unfreezing (Howard & Ruder, 2018, ULMFiT): train the head first, then unfreeze one layer per stage.

    callbacks.gradual_unfreezing: {_target_: src.callbacks.gradual_unfreezing.GradualUnfreezing, epochs_per_stage: 1}

Stage 0 trains the head (and the backbone's top, e.g. BERT's pooler); stage s adds the top s transformer
layers; the stage after the last layer adds the embeddings. Lightning's `BaseFinetuning` adds a new
optimizer param group at each unfreeze, which the per-step LambdaLR schedule would not cover; here the
optimizer holds every parameter from the start (frozen ones get no gradient, so no update and no
weight decay) and the callback only toggles `requires_grad`.
"""


import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy

from src.errors import ConfigError
from src.modules.anatomy import parameter_depths
from src.modules.finetuning import parameter_counts


class GradualUnfreezing(Callback):
    """Unfreezes the encoder top-down, one layer every `epochs_per_stage` epochs."""

    def __init__(self, epochs_per_stage: int = 1) -> None:
        if epochs_per_stage < 1:
            raise ConfigError(f"callbacks.gradual_unfreezing.epochs_per_stage={epochs_per_stage} "
                              "must be >= 1.")
        self.epochs_per_stage = epochs_per_stage
        self.stage = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not all(p.requires_grad for p in pl_module.model.parameters()):
            raise ConfigError("callbacks.gradual_unfreezing needs model.finetune.mode=full (it decides what "
                              "is frozen); remove the callback or the other fine-tuning mode.")
        if parameter_depths(pl_module.model) is None:
            raise ConfigError(f"callbacks.gradual_unfreezing needs a layer stack, which "
                              f"{type(pl_module.model).__name__} lacks; remove the callback.")
        strategy = trainer.strategy
        if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters"):
            raise ConfigError("callbacks.gradual_unfreezing under DDP needs trainer.strategy="
                              "ddp_find_unused_parameters_true (frozen layers get no gradient).")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, pl_module)  # before the module logs its trainable parameter count

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._apply(trainer, pl_module)

    def _apply(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Trainable iff depth >= top - stage (depths: embeddings 0, layers 1..L, top L+1, head L+2)."""
        stage = trainer.current_epoch // self.epochs_per_stage
        if stage == self.stage:
            return
        self.stage = stage
        depths, top = parameter_depths(pl_module.model)
        for name, param in pl_module.model.named_parameters():
            param.requires_grad_(depths[name] >= top - stage)
        counts = parameter_counts(pl_module.model)
        for logger in trainer.loggers:
            logger.log_metrics({"unfreeze/stage": stage, "unfreeze/trainable": counts["trainable"]},
                               step=trainer.global_step)
