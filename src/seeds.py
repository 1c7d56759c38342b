"""Independent random streams: every seed derives from (run seed, purpose, *indices) via SeedSequence.

`seed + epoch` or `seed + 100003 * epoch + batch` made seed k at epoch 1 shuffle like seed k+1 at epoch 0;
numpy's SeedSequence hashes the whole tuple, so distinct tuples give unrelated streams. Each purpose
always passes the same number of indices (e.g. sampler: epoch; dropout: epoch, batch).
"""

import numpy as np

PURPOSES = ("train_subset", "val_split", "val_subset", "test_subset", "class_fractions", "sampler", "dropout",
            "augmentation", "balancing")


def seed_sequence(seed: int, purpose: str, *indices: int) -> np.random.SeedSequence:
    """The SeedSequence of one stream, e.g. (seed, "dropout", epoch, batch)."""
    if seed < 0 or any(i < 0 for i in indices):
        raise ValueError(f"seed={seed}, indices={indices}: seeds and indices must be non-negative integers.")
    return np.random.SeedSequence([seed, PURPOSES.index(purpose), *indices])


def stream_seed(seed: int, purpose: str, *indices: int) -> int:
    """A 63-bit integer seed of one stream (for torch.Generator / torch.manual_seed / random.seed)."""
    return int(seed_sequence(seed, purpose, *indices).generate_state(1, np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int, purpose: str, *indices: int) -> np.random.Generator:
    """A numpy Generator on one stream."""
    return np.random.default_rng(seed_sequence(seed, purpose, *indices))


def sklearn_state(seed: int, purpose: str, *indices: int) -> np.random.RandomState:
    """A legacy RandomState on one stream: scikit-learn's `random_state` accepts it."""
    return np.random.RandomState(np.random.MT19937(seed_sequence(seed, purpose, *indices)))
