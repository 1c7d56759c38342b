"""Random streams: distinct (seed, purpose, *indices) tuples never share a stream; seeds are bounded."""

import itertools

import numpy as np
import pytest

from src.config import compose
from src.datamodules.samplers import SeededRandomSampler
from src.errors import ConfigError
from src.seeds import PURPOSES, SEED_LIMIT, numpy_rng, purpose_word, sklearn_state, stream_seed


def test_no_two_tuples_share_a_stream_in_a_10_x_4_x_200_grid() -> None:
    grid = list(itertools.product(range(10), PURPOSES[:4], range(4), range(200)))
    seeds = {stream_seed(seed, purpose, epoch, batch) for seed, purpose, epoch, batch in grid}
    assert len(seeds) == len(grid) == 10 * 4 * 4 * 200


def test_no_two_tuples_share_a_stream_across_purposes_lengths_and_word_edges() -> None:
    # Every purpose, 0 to 3 indices, values at the edges of a 32-bit word: what zero padding or word
    # splitting used to merge, e.g. (1, "val_split") and (1, "val_split", 0).
    values = (0, 1, 2, SEED_LIMIT - 1)
    family = [(seed, purpose, *indices) for seed in values for purpose in PURPOSES
              for length in range(4) for indices in itertools.product(values, repeat=length)]
    assert len({stream_seed(*t) for t in family}) == len(family) == 4 * len(PURPOSES) * (1 + 4 + 16 + 64)
    assert len({purpose_word(p) for p in PURPOSES}) == len(PURPOSES)


def test_old_collisions_are_gone() -> None:
    assert stream_seed(1, "val_split") != stream_seed(1, "val_split", 0)  # SeedSequence pads with zero words
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


@pytest.mark.parametrize("seed", [-1, SEED_LIMIT, 2**40])
def test_out_of_range_seed_is_refused(seed: int) -> None:
    with pytest.raises(ValueError, match=r"integers in \[0, 2\*\*32\)"):
        stream_seed(seed, "sampler", 0)
    with pytest.raises(ConfigError, match=rf"^Bad value for 'seed': {seed} is out of range: use an integer in "
                                          r"\[0, 2\*\*32\) \(one 32-bit word of every random stream\)\.$"):
        compose(["experiment=imdb_tiny", f"seed={seed}"])


def test_largest_seed_composes_and_unknown_purpose_is_refused() -> None:
    assert compose(["experiment=imdb_tiny", f"seed={SEED_LIMIT - 1}"]).seed == SEED_LIMIT - 1
    with pytest.raises(ValueError, match="Unknown random-stream purpose 'dropuot'"):
        stream_seed(1, "dropuot")
