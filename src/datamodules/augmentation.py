"""Word-level augmentation of the train split: a registry of operations, seeded per example.

An operation is one function `(words, p, rng, ctx) -> words` registered in `AUGMENTATIONS`; the config
`data.augmentation.ops` maps registered names to their probability p, applied in that order.
Every text's noise comes from an RNG seeded by (seed, stream, epoch or copy, row[, side]), so the same
config gives the same augmented text in every run and on every DDP rank, and online mode draws
new noise each epoch; the two sides of a text pair are augmented independently. Written by hand:
nlpaug / textattack pull in heavy models for what is a few lines of seeded sampling here, and they
do not expose per-example seeding.
"""

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets
from omegaconf import OmegaConf
from transformers import PreTrainedTokenizerBase

from src.datamodules.hashing import stable_hash
from src.datamodules.sources import text_fields
from src.registry import Registry
from src.seeds import numpy_rng

AUGMENTATIONS = Registry("augmentation")
# RNG streams, so that online, offline and synthetic-balancing noise never coincide.
ONLINE, OFFLINE, SYNTHETIC = 0, 1, 2
VOCAB_WORD = re.compile(r"[^\W\d_]+")  # letters only: inserted/substituted words are plain words
SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


@dataclass
class AugmentContext:
    """What operations may draw on: the mask text and the training vocabulary with its frequencies."""

    mask_token: str
    vocabulary: list[str]
    frequencies: np.ndarray
    swap_window: int = 2

    def draw_words(self, rng: np.random.Generator, n: int) -> list[str]:
        """`n` words sampled from the training vocabulary by frequency."""
        return [self.vocabulary[i] for i in rng.choice(len(self.vocabulary), size=n, p=self.frequencies)]

    def draw_other_word(self, rng: np.random.Generator, word: str) -> str:
        """A vocabulary word different from `word` (redrawn until it differs)."""
        while (new := self.draw_words(rng, 1)[0]) == word:
            pass
        return new


@AUGMENTATIONS.register("mask")
def mask(words: list[str], p: float, rng: np.random.Generator, ctx: AugmentContext) -> list[str]:
    """Replace each word by the mask token with probability p."""
    hits = rng.random(len(words)) < p
    return [ctx.mask_token if hit else word for word, hit in zip(words, hits, strict=True)]


@AUGMENTATIONS.register("insert")
def insert(words: list[str], p: float, rng: np.random.Generator, ctx: AugmentContext) -> list[str]:
    """After each word, with probability p, insert a word drawn from the training vocabulary."""
    hits = rng.random(len(words)) < p
    new_words = iter(ctx.draw_words(rng, int(hits.sum())))
    out = []
    for word, hit in zip(words, hits, strict=True):
        out.append(word)
        if hit:
            out.append(next(new_words))
    return out


@AUGMENTATIONS.register("substitute")
def substitute(words: list[str], p: float, rng: np.random.Generator, ctx: AugmentContext) -> list[str]:
    """Replace each word, with probability p, by a different word drawn from the training vocabulary."""
    out = list(words)
    for i in np.flatnonzero(rng.random(len(words)) < p):
        out[i] = ctx.draw_other_word(rng, words[i])
    return out


@AUGMENTATIONS.register("swap")
def swap(words: list[str], p: float, rng: np.random.Generator, ctx: AugmentContext) -> list[str]:
    """Local re-ordering: each word, with probability p, trades places with one up to `swap_window` ahead."""
    return swap_items(words, p, rng, ctx.swap_window)


@AUGMENTATIONS.register("sentence_swap")
def sentence_swap(words: list[str], p: float, rng: np.random.Generator, ctx: AugmentContext) -> list[str]:
    """Sentence re-ordering: each sentence, with probability p, trades places with the next one."""
    return [word for sentence in swap_items(split_sentences(words), p, rng, 1) for word in sentence]


@AUGMENTATIONS.register("delete")
def delete(words: list[str], p: float, rng: np.random.Generator, ctx: AugmentContext) -> list[str]:
    """Drop each word with probability p; a text never loses all its words (one random word stays)."""
    keep = rng.random(len(words)) >= p
    out = [word for word, kept in zip(words, keep, strict=True) if kept]
    return out or [words[int(rng.integers(len(words)))]]


def swap_items(items: list[Any], p: float, rng: np.random.Generator, window: int) -> list[Any]:
    """Each item, with probability p, swaps with the item 1..window positions ahead (clipped at the end)."""
    out = list(items)
    for i in np.flatnonzero(rng.random(len(out)) < p):
        j = min(len(out) - 1, int(i) + int(rng.integers(1, window + 1)))
        out[i], out[j] = out[j], out[i]
    return out


def split_sentences(words: list[str]) -> list[list[str]]:
    """Group words into sentences, ending one after each word that ends in . ! or ?."""
    sentences, current = [], []
    for word in words:
        current.append(word)
        if SENTENCE_END.search(word):
            sentences.append(current)
            current = []
    return sentences + [current] if current else sentences


@dataclass
class Augmenter:
    """Applies the configured operations to one text with an RNG seeded by (seed, *stream)."""

    ops: list[tuple[str, float]]
    ctx: AugmentContext
    seed: int

    def __call__(self, text: str, *stream: int) -> str:
        rng = numpy_rng(self.seed, "augmentation", *stream)
        words = text.split()
        for name, p in self.ops:
            if words:
                words = AUGMENTATIONS[name](words, p, rng, self.ctx)
        return " ".join(words)

    def sides(self, texts: list[str], *stream: int) -> list[str]:
        """Each side of a row (one text, or a text pair) augmented on its own stream: (*stream) for the first
        side, (*stream, 1) for the second."""
        return [self(text, *stream, *((side,) if side else ())) for side, text in enumerate(texts)]

    @cached_property
    def fingerprint(self) -> str:
        """Hash of everything that changes the output: ops, seed, mask text, vocabulary, window."""
        return stable_hash([self.ops, self.seed, self.ctx.mask_token, self.ctx.vocabulary,
                            self.ctx.frequencies.round(12).tolist(), self.ctx.swap_window])


def training_vocabulary(texts: list[str], size: int) -> tuple[list[str], np.ndarray]:
    """The `size` most frequent words of the training texts and their normalised frequencies."""
    counts = Counter(word for text in texts for word in VOCAB_WORD.findall(text))
    common = counts.most_common(size)
    frequencies = np.array([n for _, n in common], dtype=np.float64)
    return [word for word, _ in common], frequencies / frequencies.sum()


def build_augmenter(aug_cfg: Any, train_texts: list[str], tokenizer: PreTrainedTokenizerBase,
                    seed: int) -> Augmenter:
    """Operations with p > 0, the tokenizer's mask token (or the placeholder) and the training vocabulary."""
    ops = [(name, float(p)) for name, p in OmegaConf.to_container(aug_cfg.ops).items() if p > 0]
    vocabulary, frequencies = training_vocabulary(train_texts, aug_cfg.vocab_size)
    mask_token = tokenizer.mask_token or aug_cfg.mask_placeholder
    ctx = AugmentContext(mask_token, vocabulary, frequencies, aug_cfg.swap_window)
    return Augmenter(ops, ctx, seed)


def augmented_copy(dataset: Dataset, augmenter: Augmenter, *stream: int) -> Dataset:
    """One augmented copy of every row (each side of a text pair; labels unchanged), cached under a fingerprint of
    the augmenter."""

    columns = text_fields(dataset)

    def augment_batch(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        rows = [augmenter.sides(texts, *stream, i)
                for *texts, i in zip(*(batch[c] for c in columns), indices, strict=True)]
        return dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True))

    return dataset.map(augment_batch, batched=True, with_indices=True, desc="Augmenting",
                       new_fingerprint=stable_hash([dataset._fingerprint, augmenter.fingerprint, stream]))


def augment_offline(dataset: Dataset, augmenter: Augmenter, copies: int) -> Dataset:
    """The rows followed by `copies` augmented copies of them."""
    extra = [augmented_copy(dataset, augmenter, OFFLINE, copy) for copy in range(copies)]
    return concatenate_datasets([dataset, *extra])


class OnlineAugmentedDataset(torch.utils.data.Dataset):
    """Train rows augmented afresh every epoch and tokenized on the fly; items are keyed by (epoch, row)."""

    def __init__(self, dataset: Dataset, augmenter: Augmenter,
                 tokenize: Callable[..., dict[str, Any]]) -> None:
        self.dataset = dataset
        self.augmenter = augmenter
        self.tokenize = tokenize  # called with a row's text (and text_pair)
        self.columns = text_fields(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        row = self.dataset[int(index)]
        texts = self.augmenter.sides([row[c] for c in self.columns], ONLINE, epoch, int(index))
        encoded = dict(self.tokenize(*texts))
        return {**encoded, "labels": row["label"]}
