"""Random streams: distinct (seed, purpose, epoch, batch) tuples never share a stream."""

import itertools

import numpy as np
import pytest

from src.datamodules.samplers import SeededRandomSampler
from src.seeds import PURPOSES, numpy_rng, sklearn_state, stream_seed


def test_no_two_tuples_share_a_stream_in_a_10_x_4_x_200_grid() -> None:
    grid = list(itertools.product(range(10), PURPOSES[:4], range(4), range(200)))
    seeds = {stream_seed(seed, purpose, epoch, batch) for seed, purpose, epoch, batch in grid}
    assert len(seeds) == len(grid) == 10 * 4 * 4 * 200


def test_old_collisions_are_gone() -> None:
    # seed + epoch: seed 1 at epoch 1 == seed 2 at epoch 0; seed + 100003 * epoch + batch likewise.
    assert stream_seed(1, "sampler", 1) != stream_seed(2, "sampler", 0)
    assert stream_seed(1, "dropout", 0, 1) != stream_seed(2, "dropout", 0, 0)
    assert stream_seed(1, "sampler", 0) != stream_seed(1, "dropout", 0, 0)


def test_streams_draw_different_numbers_and_repeat_exactly() -> None:
    first = numpy_rng(3, "augmentation", 0, 1, 2).random(4)
    assert np.array_equal(first, numpy_rng(3, "augmentation", 0, 1, 2).random(4))
    assert not np.array_equal(first, numpy_rng(3, "augmentation", 0, 1, 3).random(4))
    assert sklearn_state(3, "train_subset").randint(1 << 30) == sklearn_state(3, "train_subset").randint(1 << 30)


def test_sampler_epochs_are_independent_of_neighbouring_seeds() -> None:
    orders = {}
    for seed, epoch in ((1, 1), (2, 0)):
        sampler = SeededRandomSampler(range(50), seed=seed)
        sampler.set_epoch(epoch)
        orders[seed, epoch] = list(sampler)
    assert orders[1, 1] != orders[2, 0]


def test_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        stream_seed(-1, "sampler", 0)
