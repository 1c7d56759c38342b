"""Re-seed every RNG from (seed, epoch) at each epoch start.

Lightning checkpoints do not carry RNG state, so without this a run resumed from an epoch-end
checkpoint would draw different shuffles and dropout masks than the uninterrupted run.
"""

import lightning as L
from lightning.pytorch.callbacks import Callback


class EpochSeed(Callback):
    """Makes each epoch's randomness a function of (seed, epoch) only, identical on every DDP rank
    so that samplers drawing from the global RNG shard the same permutation."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        L.seed_everything(self.seed + 1000 * trainer.current_epoch, workers=True,
                          verbose=False)
