"""Training samplers whose order depends only on (seed, epoch).

Lightning checkpoints carry no RNG state, so a sampler drawing from the global RNG would give a
resumed run a different data order than the uninterrupted one. Lightning calls `set_epoch` on the
train sampler before every epoch; these samplers re-seed their own generator there.
"""

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler
from transformers.trainer_pt_utils import LengthGroupedSampler


class _EpochSeeded:
    """Mixin: a private generator re-seeded from (seed, epoch) in `set_epoch`."""

    seed: int
    generator: torch.Generator

    def _init_seed(self, seed: int) -> None:
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(self.seed + epoch)


class SeededRandomSampler(_EpochSeeded, RandomSampler):
    """Uniform shuffling (still a RandomSampler, so Lightning swaps in a DistributedSampler under DDP)."""

    def __init__(self, data_source: object, seed: int) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self._init_seed(seed)


class SeededWeightedRandomSampler(_EpochSeeded, WeightedRandomSampler):
    """Class-weighted sampling with replacement."""

    def __init__(self, weights: list[float], seed: int) -> None:
        super().__init__(weights, num_samples=len(weights), replacement=True, generator=torch.Generator())
        self._init_seed(seed)


class SeededLengthGroupedSampler(_EpochSeeded, LengthGroupedSampler):
    """Batches of similar length (less padding), in a random batch order."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self._init_seed(seed)


class EpochSyncedSampler(Sampler[Any]):
    """Sets a seeded sampler's epoch from the trainer when an epoch's iteration starts.

    Lightning calls `set_epoch` only on the outermost sampler; under DDP that is the
    DistributedSamplerWrapper it puts around a custom sampler, which never passes the epoch on, so
    without this every epoch would repeat epoch 0's order. Samplers are iterated in the main process.
    """

    def __init__(self, rows: Sampler[int], epoch_fn: Callable[[], int]) -> None:
        self.rows = rows
        self.epoch_fn = epoch_fn

    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch_fn()
        if hasattr(self.rows, "set_epoch"):
            self.rows.set_epoch(epoch)
        return (self.item(epoch, int(row)) for row in self.rows)

    def item(self, epoch: int, row: int) -> Any:
        return row

    def __len__(self) -> int:
        return len(self.rows)


class EpochTaggedSampler(EpochSyncedSampler):
    """Yields (epoch, row) pairs: online augmentation reads the epoch from the index it is given, so it
    reaches DataLoader workers (persistent or not) and DDP shards the pairs like plain indices."""

    def item(self, epoch: int, row: int) -> tuple[int, int]:
        return epoch, row
