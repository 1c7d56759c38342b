"""Training samplers whose order depends only on (seed, epoch), each epoch an independent stream.

Lightning checkpoints carry no RNG state, so a sampler drawing from the global RNG would give a
resumed run a different data order than the uninterrupted one. Lightning calls `set_epoch` on the
train sampler before every epoch; these samplers re-seed their own generator when an epoch's
iteration starts.

They are stateful (`state_dict` = epoch + indices yielded so far): the train loader is torchdata's
StatefulDataLoader, which saves and restores its sampler's state, and Lightning puts the loader's
state into every checkpoint, so a run resumed mid-epoch continues the same order where it stopped.
"""

import itertools
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from src.seeds import stream_seed


class EpochSeeded:
    """Mixin: a private generator seeded from (seed, epoch) when iteration starts; resumable mid-epoch.

    torchdata's own RandomSampler only covers uniform shuffling; this one state covers all three samplers."""

    seed: int
    generator: torch.Generator

    def _init_seed(self, seed: int) -> None:
        self.seed = seed
        self.epoch = 0
        self.yielded = 0  # indices of this epoch handed out so far
        self._resume: tuple[int, int] | None = None  # (epoch, position) of a loaded state

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        resume, self._resume = self._resume, None  # taken now: a later iter() starts a fresh epoch
        return self._iterate(resume)

    def _iterate(self, resume: tuple[int, int] | None) -> Iterator[int]:
        # The epoch is read on the first draw, not in iter(): on resume Lightning iterates the loader before
        # set_epoch, and a state saved at an epoch's end resumes at the start of the next epoch.
        start = resume[1] if resume is not None and resume[0] == self.epoch else 0
        self.generator.manual_seed(stream_seed(self.seed, "sampler", self.epoch))
        self.yielded = start
        for index in itertools.islice(super().__iter__(), start, None):  # skips indices only; reads no data
            self.yielded += 1
            yield index

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "yielded": self.yielded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self._resume = (state["epoch"], state["yielded"])


class SeededRandomSampler(EpochSeeded, RandomSampler):
    """Uniform shuffling (still a RandomSampler, so Lightning swaps in a DistributedSampler under DDP)."""

    def __init__(self, data_source: object, seed: int) -> None:
        super().__init__(data_source, generator=torch.Generator())
        self._init_seed(seed)


class SeededWeightedRandomSampler(EpochSeeded, WeightedRandomSampler):
    """Class-weighted sampling with replacement."""

    def __init__(self, weights: list[float], seed: int) -> None:
        super().__init__(weights, num_samples=len(weights), replacement=True, generator=torch.Generator())
        self._init_seed(seed)


class SeededLengthGroupedSampler(EpochSeeded, LengthGroupedSampler):
    """Batches of similar length (less padding), in a random batch order."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self._init_seed(seed)


class EpochTaggedSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, row) pairs from a seeded row sampler, for online augmentation: the dataset reads the
    epoch from the index it is given, so it reaches DataLoader workers (persistent or not).

    Lightning calls `set_epoch` on this sampler before every epoch (under DDP on its
    DistributedSamplerWrapper, which forwards it here); it is passed on to the row sampler, whose
    state (epoch, position) is this sampler's state."""

    def __init__(self, rows: EpochSeeded) -> None:
        self.rows = rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.rows.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return self._tag(iter(self.rows))

    def _tag(self, rows: Iterator[int]) -> Iterator[tuple[int, int]]:
        for row in rows:  # the epoch is read as rows are drawn: on resume, set_epoch comes after iter()
            yield self.epoch, int(row)

    def state_dict(self) -> dict[str, Any]:
        return self.rows.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.rows.load_state_dict(state)

    def __len__(self) -> int:
        return len(self.rows)
