"""`TextClassificationDataModule`: raw text (or text pairs) -> cleaned, balanced, augmented, tokenized, padded
batches."""

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyarrow as pa
from datasets import Dataset
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from src.datamodules.augmentation import (
    Augmenter,
    OnlineAugmentedDataset,
    augment_offline,
    build_augmenter,
)
from src.datamodules.balancing import BALANCERS, Balanced, class_counts
from src.datamodules.cleaning import CleaningStats, clean_dataset
from src.datamodules.hashing import stable_hash
from src.datamodules.samplers import (
    EpochSeeded,
    EpochTaggedSampler,
    SeededLengthGroupedSampler,
    SeededRandomSampler,
    SeededWeightedRandomSampler,
)
from src.datamodules.sources import describe_source, label_array, load_split, split_file, standardize, text_fields
from src.errors import DataError
from src.seeds import numpy_rng, sklearn_state

SPLITS = ("train", "validation", "test")
log = logging.getLogger(__name__)


def stratified_subset(dataset: Dataset, size: int | None, random_state: np.random.RandomState) -> Dataset:
    """A class-stratified, seeded subset of `size` rows (the whole split when size is None or too big)."""
    if size is None or size >= len(dataset):
        return dataset
    keep, _ = train_test_split(np.arange(len(dataset)), train_size=size, stratify=label_array(dataset),
                               random_state=random_state)
    return dataset.select(keep)


def class_fraction_subset(dataset: Dataset, fractions: list[float] | None, rng: np.random.Generator) -> Dataset:
    """Keep a seeded random `fractions[c]` share of class c's rows: an imbalanced slice to study balancing."""
    if fractions is None:
        return dataset
    labels = label_array(dataset)
    keep = [rng.permutation(np.flatnonzero(labels == c))[: round(share * np.sum(labels == c))]
            for c, share in enumerate(fractions)]
    return dataset.select(np.sort(np.concatenate(keep)))


def stratified_split(dataset: Dataset, test_size: float,
                     random_state: np.random.RandomState) -> tuple[Dataset, Dataset]:
    """Split into (rest, held-out) with the class ratio kept in both parts."""
    rest, held_out = train_test_split(np.arange(len(dataset)), test_size=test_size,
                                      stratify=label_array(dataset), random_state=random_state)
    return dataset.select(rest), dataset.select(held_out)


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int, truncation: str = "head",
                 head_fraction: float = 0.25, pairs: list[str] | None = None) -> dict[str, list[Any]]:
    """Token ids cut to max_length: the first tokens (`head`) or head + tail (`head_tail`); `pairs` (the second
    texts of text pairs) are encoded with the first as one sequence, the longer side cut first.

    Head + tail keeps a review's opening and its verdict at the end (Sun et al. 2019: 128 + 382 of
    512 beat head-only on IMDB). Tokenizers truncate only one end, so the text is cut at the token
    offsets of the kept head and tail, then tokenized as usual (special tokens included). For a pair,
    the budget is split longest-first (the shorter side keeps all its tokens up to half the budget)
    and each side that is too long keeps its own head and tail."""
    if truncation == "head_tail" and pairs is None:
        budget = max_length - tokenizer.num_special_tokens_to_add()
        texts = [head_and_tail(tokenizer, text, budget, head_fraction) for text in texts]
    elif truncation == "head_tail":
        texts, pairs = pair_head_and_tail(tokenizer, texts, pairs, max_length, head_fraction)
    return dict(tokenizer(texts, pairs, truncation="longest_first", max_length=max_length))


def head_and_tail(tokenizer: PreTrainedTokenizerBase, text: str, budget: int, head_fraction: float) -> str:
    """The text with its middle tokens removed when it has more than `budget` tokens (special tokens not counted)."""
    spans = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    if len(spans) <= budget:
        return text
    head = round(head_fraction * budget)
    tail = budget - head
    kept = [text[: spans[head - 1][1]].rstrip() if head else "", text[spans[-tail][0]:].lstrip() if tail else ""]
    return " ".join(part for part in kept if part)


def pair_head_and_tail(tokenizer: PreTrainedTokenizerBase, texts: list[str], pairs: list[str], max_length: int,
                       head_fraction: float) -> tuple[list[str], list[str]]:
    """Both sides of every pair cut to their longest-first share of the budget, each keeping its head and tail."""
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    counts = [len(ids) for ids in tokenizer([*texts, *pairs], add_special_tokens=False, verbose=False)["input_ids"]]
    cut_texts, cut_pairs = [], []
    for text, pair, first, second in zip(texts, pairs, counts[:len(texts)], counts[len(texts):], strict=True):
        keep_first, keep_second = longest_first(first, second, budget)
        cut_texts.append(head_and_tail(tokenizer, text, keep_first, head_fraction))
        cut_pairs.append(head_and_tail(tokenizer, pair, keep_second, head_fraction))
    return cut_texts, cut_pairs


def longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    """Tokens each side keeps when the longer side loses tokens first (the tokenizers' `longest_first`)."""
    if first + second <= budget:
        return first, second
    shorter = min(first, second, budget // 2)
    return (budget - shorter, shorter) if first > second else (shorter, budget - shorter)


class TextClassificationDataModule(L.LightningDataModule):
    """Loads the configured source, carves a stratified validation split, cleans, balances and augments
    the train split, tokenizes (cached on disk) and batches with dynamic padding."""

    def __init__(self, data_cfg: DictConfig | dict[str, Any], tokenizer: PreTrainedTokenizerBase,
                 seed: int = 42) -> None:
        super().__init__()
        self.cfg = OmegaConf.create(data_cfg) if isinstance(data_cfg, dict) else data_cfg
        self.tokenizer = tokenizer
        self.seed = seed
        self.raw: dict[str, Dataset] = {}  # standardized source rows
        self.cleaned: dict[str, Dataset] = {}  # after cleaning (empty texts dropped)
        self.texts: dict[str, Dataset] = {}  # tokenizer input: cleaned; train balanced + offline-augmented
        self.splits: dict[str, Dataset] = {}  # tokenized
        self.cleaning_stats: dict[str, CleaningStats] = {}
        self.class_counts: dict[str, list[int]] = {}  # train: before/after balancing, final
        self.balanced: Balanced | None = None
        self.augmenter: Augmenter | None = None
        self.collator = DataCollatorWithPadding(tokenizer)

    @property
    def num_classes(self) -> int:
        return len(self.cfg.label_names)

    @property
    def batch_size(self) -> int:
        """data.batch_size, what train_dataloader batches by: Lightning's BatchSizeFinder scales it."""
        return self.cfg.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.cfg.batch_size = value

    @property
    def class_weights(self) -> list[float] | None:
        """Per-class loss weights under balancing.strategy=class_weighted_loss (loads the data), else None."""
        if self.cfg.balancing.strategy != "class_weighted_loss":
            return None
        if self.balanced is None:
            self.prepare_texts()
        return self.balanced.class_weights

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if not self.texts:
            self.prepare_texts()
        self.splits = {name: self._tokenize(name, ds) for name, ds in self.texts.items()}

    def prepare_texts(self) -> dict[str, Dataset]:
        """Load, clean every split, then balance and (offline) augment the train split; no tokenization."""
        self.raw = self.load_raw_splits()
        for name, dataset in self.raw.items():
            self.cleaned[name], self.cleaning_stats[name] = clean_dataset(dataset, self.cfg.cleaning)
            if len(self.cleaned[name]) == 0:
                raise DataError(f"Every text of the {name} split ({describe_source(self.cfg, name)}) is "
                                "empty after cleaning. Switch off data.cleaning.stop_words / special_chars "
                                "or check the data.")
        train = self.cleaned["train"]
        self.augmenter = self._build_augmenter(train)
        self.balanced = BALANCERS.get_builder(self.cfg.balancing.strategy)(train, self.num_classes, self.seed,
                                                                            self.augmenter)
        final = self.balanced.dataset
        if self.cfg.augmentation.mode == "offline":
            final = augment_offline(final, self.augmenter, self.cfg.augmentation.copies)
        self.class_counts = {"before_balancing": class_counts(train, self.num_classes),
                             "after_balancing": class_counts(self.balanced.dataset, self.num_classes),
                             "final": class_counts(final, self.num_classes)}
        self.texts = {**self.cleaned, "train": final}
        return self.texts

    def _build_augmenter(self, train: Dataset) -> Augmenter | None:
        """Only built when something uses it: augmentation on, or synthetic minority samples."""
        if self.cfg.augmentation.mode == "none" and self.cfg.balancing.strategy != "synthetic":
            return None
        texts = [text for column in text_fields(train) for text in train[column]]
        return build_augmenter(self.cfg.augmentation, texts, self.tokenizer, self.seed)

    def load_raw_splits(self) -> dict[str, Dataset]:
        """train / validation / test as standardized `text` + `label` datasets, limited and stratified."""
        cfg = self.cfg
        train = self.read_split(cfg.train_split)
        if cfg.val_split is None:
            train, validation = stratified_split(train, cfg.val_size, sklearn_state(self.seed, "val_split"))
        else:
            validation = self.read_split(cfg.val_split)
        test = self.read_split(cfg.test_split)
        return {
            "train": class_fraction_subset(
                stratified_subset(train, cfg.limit_train, sklearn_state(self.seed, "train_subset")),
                cfg.train_class_fractions, numpy_rng(self.seed, "class_fractions")),
            "validation": stratified_subset(validation, cfg.limit_val, sklearn_state(self.seed, "val_subset")),
            "test": stratified_subset(test, cfg.limit_test, sklearn_state(self.seed, "test_subset")),
        }

    def read_split(self, split: str) -> Dataset:
        """One split of the source as `text` + integer `label` rows: what a data module for another source
        overrides (with `source_identity`); cleaning, balancing, augmentation and batching stay as they are."""
        return standardize(load_split(self.cfg, split), self.cfg, split)

    def cache_key(self, split: str, dataset: Dataset) -> str:
        """Hash of everything that changes a tokenized split: source, rows, cleaning, tokenizer, max length.

        `rows` is the datasets fingerprint, which every step here derives from its inputs and settings
        (subset indices, cleaning, balancing, offline augmentation), so it is stable across runs."""
        cfg = self.cfg
        source_split = {"train": cfg.train_split, "validation": cfg.val_split or cfg.train_split,
                        "test": cfg.test_split}[split]
        parts = {
            "source": self.source_identity(source_split),
            "rows": dataset._fingerprint,
            "cleaning": OmegaConf.to_container(self.cfg.cleaning),
            "tokenizer": [self.tokenizer.name_or_path, type(self.tokenizer).__name__, len(self.tokenizer)],
            "max_length": self.cfg.max_length,
            "truncation": [self.cfg.truncation, self.cfg.head_fraction],
        }
        return stable_hash(parts)

    def source_identity(self, split: str) -> list[Any]:
        """What identifies the split's source data for the token cache: the Hub dataset, or the file and its stat."""
        if self.cfg.source == "hub":
            return [self.cfg.hub_name, self.cfg.hub_config, split]
        path = split_file(self.cfg, split)
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

    def _tokenize(self, split: str, dataset: Dataset) -> Dataset:
        """The tokenized split, from the on-disk cache when it holds it; an unreadable cache file is rebuilt."""
        cache_dir = Path(self.cfg.cache_dir) / "tokenized" / self.cfg.name
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = self.cache_key(split, dataset)
        cache_file = cache_dir / f"{split}-{key}.arrow"
        try:
            tokenized = self._map_tokenize(split, dataset, key, cache_file)
        except (OSError, pa.ArrowException) as err:
            if not cache_file.is_file():
                raise
            log.warning("Tokenization cache %s is unreadable (%s: %s); rebuilding it.", cache_file,
                        type(err).__name__, err)
            cache_file.unlink()
            tokenized = self._map_tokenize(split, dataset, key, cache_file)
        return tokenized.rename_column("label", "labels").with_format("torch")

    def _map_tokenize(self, split: str, dataset: Dataset, key: str, cache_file: Path) -> Dataset:
        return dataset.map(
            self._tokenize_batch,
            batched=True,
            remove_columns=text_fields(dataset),
            cache_file_name=str(cache_file),  # datasets writes it to a temporary file and renames it when done
            new_fingerprint=key,  # else datasets dill-hashes this bound method, datamodule and all (seconds)
            load_from_cache_file=True,
            desc=f"Tokenizing {split}",
        )

    def _tokenize_batch(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = self.encode(batch["text"], batch.get("text_pair"))
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> dict[str, list[Any]]:
        """Token ids (of text pairs when `pairs` is given) cut to data.max_length the configured way (see
        `encode_texts`)."""
        return encode_texts(self.tokenizer, texts, self.cfg.max_length, self.cfg.truncation, self.cfg.head_fraction,
                            pairs)

    def _loader(self, dataset: Any, batch_size: int, sampler: Sampler | None = None,
                loader_class: type[DataLoader] = DataLoader) -> DataLoader:
        return loader_class(dataset, batch_size=batch_size, sampler=sampler, collate_fn=self.collator,
                            num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled, length-grouped or class-weighted order; online augmentation re-noises rows every epoch.

        Samplers are seeded from (seed, epoch) (src/datamodules/samplers.py), identically on every rank,
        so under DDP Lightning's DistributedSampler(Wrapper) shards one shared order into disjoint parts
        (the wrapper forwards `set_epoch` to the sampler it wraps).

        A torchdata StatefulDataLoader: Lightning saves its state (the sampler's epoch and position) in every
        checkpoint and restores it on resume, so a mid-epoch checkpoint resumes at the next unseen batch."""
        sampler = self.train_sampler()
        if self.cfg.augmentation.mode != "online":
            return self._loader(self.splits["train"].remove_columns("length"), self.batch_size,
                                sampler=sampler, loader_class=StatefulDataLoader)
        dataset = OnlineAugmentedDataset(self.texts["train"], self.augmenter, self._encode_one)
        return self._loader(dataset, self.batch_size, sampler=EpochTaggedSampler(sampler),
                            loader_class=StatefulDataLoader)

    def train_sampler(self) -> EpochSeeded:
        """Class-weighted (weighted_sampler balancing), length-grouped or uniform order, seeded per epoch."""
        weights = self.row_sampling_weights()
        if weights is not None:
            return SeededWeightedRandomSampler(weights, seed=self.seed)
        if self.cfg.group_by_length:
            lengths = [int(n) for n in self.splits["train"].with_format(None)["length"]]
            return SeededLengthGroupedSampler(self.batch_size, lengths=lengths, seed=self.seed)
        return SeededRandomSampler(self.splits["train"], seed=self.seed)

    def row_sampling_weights(self) -> list[float] | None:
        """Each final train row's sampler weight (its class's weight; offline copies included), or None."""
        if self.balanced.sampling_weights is None:
            return None
        return np.asarray(self.balanced.sampling_weights)[label_array(self.texts["train"])].tolist()

    def _encode_one(self, text: str, pair: str | None = None) -> dict[str, Any]:
        return {key: values[0] for key, values in self.encode([text], None if pair is None else [pair]).items()}

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["validation"].remove_columns("length"), self.cfg.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"].remove_columns("length"), self.cfg.eval_batch_size)
