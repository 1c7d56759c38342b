"""Re-seed every RNG from (seed, epoch, batch) before each training batch.

Lightning checkpoints carry no RNG state, and a resumed run consumes random numbers in a different
order (sanity checks, dataloader start-up), so without this its dropout masks would differ from the
uninterrupted run's. Data order is handled by the seeded samplers in src/datamodules/samplers.py.
"""

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from src.seeds import stream_seed


class EpochSeed(Callback):
    """Makes each batch's randomness a function of (seed, epoch, batch index), the same on every rank."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        # Not L.seed_everything: it also rewrites PL_GLOBAL_SEED, which DistributedSampler reads.
        seed = stream_seed(self.seed, "dropout", trainer.current_epoch, batch_idx)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
