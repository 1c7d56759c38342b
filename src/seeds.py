"""Independent random streams: every seed derives from (run seed, purpose, *indices) via SeedSequence.

`seed + epoch` or `seed + 100003 * epoch + batch` made seed k at epoch 1 shuffle like seed k+1 at epoch 0;
numpy's SeedSequence hashes its entropy words, so distinct word lists give unrelated streams. The words are
(seed, purpose word, number of indices, *indices), each one 32-bit word: SeedSequence pads short entropy with
zero words and splits integers >= 2**32 into several words, so without the count (seed, p) and (seed, p, 0)
would be one stream, and without the bound a large seed could spell another tuple's words.
"""

import hashlib

import numpy as np

PURPOSES = ("train_subset", "val_split", "val_subset", "test_subset", "class_fractions", "sampler", "dropout",
            "augmentation", "balancing")
SEED_LIMIT = 2**32  # seeds and indices are one 32-bit word each (Lightning's seed_everything has the same bound)


def purpose_word(purpose: str) -> int:
    """A fixed 32-bit word per purpose (its name hashed, so adding a purpose changes no other stream)."""
    if purpose not in PURPOSES:
        raise ValueError(f"Unknown random-stream purpose '{purpose}'. Use one of {', '.join(PURPOSES)}.")
    return int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:4], "little")


def seed_sequence(seed: int, purpose: str, *indices: int) -> np.random.SeedSequence:
    """The SeedSequence of one stream, e.g. (seed, "dropout", epoch, batch)."""
    if not all(0 <= value < SEED_LIMIT for value in (seed, *indices)):
        raise ValueError(f"seed={seed}, indices={indices}: seeds and indices must be integers in [0, 2**32).")
    return np.random.SeedSequence([seed, purpose_word(purpose), len(indices), *indices])


def stream_seed(seed: int, purpose: str, *indices: int) -> int:
    """A 63-bit integer seed of one stream (for torch.Generator / torch.manual_seed / random.seed)."""
    return int(seed_sequence(seed, purpose, *indices).generate_state(1, np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int, purpose: str, *indices: int) -> np.random.Generator:
    """A numpy Generator on one stream."""
    return np.random.default_rng(seed_sequence(seed, purpose, *indices))


def sklearn_state(seed: int, purpose: str, *indices: int) -> np.random.RandomState:
    """A legacy RandomState on one stream: scikit-learn's `random_state` accepts it."""
    return np.random.RandomState(np.random.MT19937(seed_sequence(seed, purpose, *indices)))
