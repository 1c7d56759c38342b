"""Training samplers whose order depends only on (seed, epoch), each epoch an independent stream.

Lightning checkpoints carry no RNG state, so a sampler drawing from the global RNG would give a
resumed run a different data order than the uninterrupted one. Lightning calls `set_epoch` on the
train sampler before every epoch; these samplers re-seed their own generator there.
"""

from collections.abc import Iterator

import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from src.seeds import stream_seed


class _EpochSeeded:
    """Mixin: a private generator re-seeded from (seed, epoch) in `set_epoch`."""

    seed: int
    generator: torch.Generator

    def _init_seed(self, seed: int) -> None:
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(stream_seed(self.seed, "sampler", epoch))


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


class EpochTaggedSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, row) pairs from a seeded row sampler, for online augmentation: the dataset reads the
    epoch from the index it is given, so it reaches DataLoader workers (persistent or not).

    Lightning calls `set_epoch` on this sampler before every epoch (under DDP on its
    DistributedSamplerWrapper, which forwards it here); it is passed on to the row sampler."""

    def __init__(self, rows: Sampler[int]) -> None:
        self.rows = rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.rows, "set_epoch"):
            self.rows.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(row)) for row in self.rows)

    def __len__(self) -> int:
        return len(self.rows)
