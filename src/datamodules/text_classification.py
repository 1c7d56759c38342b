"""`TextClassificationDataModule`: raw text -> cleaned, tokenized, dynamically padded batches."""

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L
from datasets import Dataset
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from src.datamodules.sources import load_split, split_file, standardize

SPLITS = ("train", "validation", "test")


def stratified_subset(dataset: Dataset, size: int | None, seed: int) -> Dataset:
    """A class-stratified, seeded subset of `size` rows (the whole split when size is None or too big)."""
    if size is None or size >= len(dataset):
        return dataset
    keep, _ = train_test_split(range(len(dataset)), train_size=size, stratify=dataset["label"], random_state=seed)
    return dataset.select(keep)


def stratified_split(dataset: Dataset, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split into (rest, held-out) with the class ratio kept in both parts."""
    rest, held_out = train_test_split(range(len(dataset)), test_size=test_size, stratify=dataset["label"],
                                      random_state=seed)
    return dataset.select(rest), dataset.select(held_out)


class TextClassificationDataModule(L.LightningDataModule):
    """Loads the configured source, carves a stratified validation split, tokenizes (cached) and batches."""

    def __init__(self, data_cfg: DictConfig | dict[str, Any], tokenizer: PreTrainedTokenizerBase,
                 seed: int = 42) -> None:
        super().__init__()
        self.cfg = OmegaConf.create(data_cfg) if isinstance(data_cfg, dict) else data_cfg
        self.tokenizer = tokenizer
        self.seed = seed
        self.raw: dict[str, Dataset] = {}
        self.splits: dict[str, Dataset] = {}
        self.collator = DataCollatorWithPadding(tokenizer)

    @property
    def num_classes(self) -> int:
        return len(self.cfg.label_names)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.raw = self.load_raw_splits()
        self.splits = {name: self._tokenize(name, ds) for name, ds in self.raw.items()}

    def load_raw_splits(self) -> dict[str, Dataset]:
        """train / validation / test as standardized `text` + `label` datasets, limited and stratified."""
        cfg = self.cfg
        train = standardize(load_split(cfg, cfg.train_split), cfg, cfg.train_split)
        if cfg.val_split is None:
            train, validation = stratified_split(train, cfg.val_size, self.seed)
        else:
            validation = standardize(load_split(cfg, cfg.val_split), cfg, cfg.val_split)
        test = standardize(load_split(cfg, cfg.test_split), cfg, cfg.test_split)
        return {
            "train": stratified_subset(train, cfg.limit_train, self.seed),
            "validation": stratified_subset(validation, cfg.limit_val, self.seed),
            "test": stratified_subset(test, cfg.limit_test, self.seed),
        }

    def cache_key(self, split: str, dataset: Dataset) -> str:
        """Hash of everything that changes a tokenized split: source, rows, tokenizer, max length."""
        source_split = {"train": self.cfg.train_split, "validation": self.cfg.val_split or self.cfg.train_split,
                        "test": self.cfg.test_split}[split]
        parts = {
            "source": self._source_identity(source_split),
            "rows": dataset._fingerprint,
            "tokenizer": [self.tokenizer.name_or_path, type(self.tokenizer).__name__, len(self.tokenizer)],
            "max_length": self.cfg.max_length,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _source_identity(self, split: str) -> list[Any]:
        if self.cfg.source == "hub":
            return [self.cfg.hub_name, self.cfg.hub_config, split]
        path = split_file(self.cfg, split)
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

    def _tokenize(self, split: str, dataset: Dataset) -> Dataset:
        cache_dir = Path(self.cfg.cache_dir) / "tokenized" / self.cfg.name
        cache_dir.mkdir(parents=True, exist_ok=True)
        tokenized = dataset.map(
            self._tokenize_batch,
            batched=True,
            remove_columns=["text"],
            cache_file_name=str(cache_dir / f"{split}-{self.cache_key(split, dataset)}.arrow"),
            load_from_cache_file=True,
            desc=f"Tokenizing {split}",
        )
        return tokenized.rename_column("label", "labels").with_format("torch")

    def _tokenize_batch(self, batch: dict[str, list[Any]]) -> dict[str, Any]:
        encoded = self.tokenizer(batch["text"], truncation=True, max_length=self.cfg.max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    def _loader(self, split: str, batch_size: int, sampler: Sampler | None = None,
                shuffle: bool = False) -> DataLoader:
        dataset = self.splits[split].remove_columns("length")
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=shuffle,
                          collate_fn=self.collator, num_workers=self.cfg.num_workers,
                          persistent_workers=self.cfg.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        if self.cfg.group_by_length:
            lengths = [int(n) for n in self.splits["train"].with_format(None)["length"]]
            sampler = LengthGroupedSampler(self.cfg.batch_size, lengths=lengths)
            return self._loader("train", self.cfg.batch_size, sampler=sampler)
        return self._loader("train", self.cfg.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.cfg.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.cfg.eval_batch_size)
