"""Augmentation: measured rates match p on real IMDB text, labels never change, val/test untouched,
seeded outputs, fresh noise every epoch (also through a real Lightning fit)."""

from collections.abc import Callable
from typing import Any

import lightning as L
import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from src.builders import check_buildable
from src.callbacks.epoch_seed import EpochSeed
from src.datamodules.augmentation import (
    AUGMENTATIONS,
    ONLINE,
    OnlineAugmentedDataset,
    build_augmenter,
    split_sentences,
)
from src.datamodules.cleaning import clean_text
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError
from src.modules.model_builder import load_tokenizer
from src.schemas import AugmentationConfig, CleaningConfig

TOLERANCE = 0.02


@pytest.fixture(scope="module")
def bert_tokenizer() -> Any:
    return load_tokenizer(OmegaConf.create({"name_or_path": _minilm_path(), "tokenizer": None}))


def _minilm_path() -> str:
    from src.config import compose

    return compose(["experiment=imdb_tiny"]).model.name_or_path


@pytest.fixture(scope="module")
def reviews(imdb_train: pd.DataFrame) -> list[str]:
    """300 cleaned real reviews of both classes (about 70,000 words, 3,500 sentences)."""
    cleaning = OmegaConf.structured(CleaningConfig)
    rows = pd.concat([imdb_train.head(150), imdb_train.tail(150)])
    return [clean_text(text, cleaning) for text in rows.text]


def one_op(name: str, p: float, texts: list[str], tokenizer: Any) -> Callable[..., str]:
    return build_augmenter(OmegaConf.structured(AugmentationConfig(ops={name: p})), texts, tokenizer, seed=7)


def measured_rate(name: str, before: list[str], after: list[str], mask_token: str) -> tuple[float, int]:
    """(rate, trials) of an operation, measured from input/output words only."""
    if name == "mask":
        return sum(w == mask_token for w in after) / len(before), len(before)
    if name == "insert":
        return (len(after) - len(before)) / len(before), len(before)
    if name == "delete":
        return (len(before) - len(after)) / len(before), len(before)
    if name == "substitute":
        return sum(a != b for a, b in zip(before, after, strict=True)) / len(before), len(before)
    if name == "swap":  # tokens made unique: every swap moves two of them
        return sum(a != b for a, b in zip(before, after, strict=True)) / (2 * len(before)), len(before)
    sentences_before = [" ".join(s) for s in split_sentences(before)]
    sentences_after = [" ".join(s) for s in split_sentences(after)]
    moved = sum(a != b for a, b in zip(sentences_before, sentences_after, strict=True))
    return moved / (2 * len(sentences_before)), len(sentences_before)


@pytest.mark.parametrize(
    ("name", "p"),
    [(*item,) for item in AugmentationConfig().ops.items() if item[1] > 0]
    + [("sentence_swap", 0.1), ("mask", 0.3)],
)
def test_measured_rate_matches_p(name: str, p: float, reviews: list[str], bert_tokenizer: Any) -> None:
    augment = one_op(name, p, reviews, bert_tokenizer)
    before_words, after_words = [], []
    for row, text in enumerate(reviews):
        if name in ("swap", "sentence_swap"):  # tag words so that every move is visible
            text = " ".join(f"{i}#{w}" for i, w in enumerate(text.split()))
        before_words += text.split()
        after_words += augment(text, ONLINE, 0, row).split()
    rate, trials = measured_rate(name, before_words, after_words, augment.ctx.mask_token)
    assert len(before_words) >= 10_000
    assert trials >= 3_000
    assert abs(rate - p) <= TOLERANCE, f"{name}: measured {rate:.4f} vs p={p}"


def test_inserted_and_substituted_words_come_from_the_training_vocabulary(
    reviews: list[str], bert_tokenizer: Any
) -> None:
    cfg = OmegaConf.structured(AugmentationConfig(ops={"substitute": 0.5, "insert": 0.5}, vocab_size=50))
    augment = build_augmenter(cfg, reviews, bert_tokenizer, seed=1)
    vocabulary = set(augment.ctx.vocabulary)
    assert len(vocabulary) == 50 and {"the", "and", "movie"} <= vocabulary
    before, after = set(reviews[0].split()), set(augment(reviews[0], ONLINE, 0, 0).split())
    assert after - before and after - before <= vocabulary


def test_mask_uses_the_tokenizer_mask_token_or_the_placeholder(
    reviews: list[str], bert_tokenizer: Any, make_cfg: Callable[..., DictConfig]
) -> None:
    bert_mask = one_op("mask", 0.5, reviews, bert_tokenizer)
    masked = bert_mask(reviews[0], ONLINE, 0, 0)
    assert bert_mask.ctx.mask_token == "[MASK]"
    assert bert_tokenizer.mask_token_id in bert_tokenizer(masked)["input_ids"]
    gpt2_tokenizer = load_tokenizer(make_cfg("model=tiny_gpt2").model)
    assert gpt2_tokenizer.mask_token is None
    gpt2_mask = one_op("mask", 0.5, reviews, gpt2_tokenizer)
    assert gpt2_mask.ctx.mask_token == "_"
    assert "_" in gpt2_mask(reviews[0], ONLINE, 0, 0).split()


def test_same_seed_same_output_other_epoch_or_seed_other_output(
    reviews: list[str], bert_tokenizer: Any
) -> None:
    cfg = OmegaConf.structured(AugmentationConfig)
    first, again = (build_augmenter(cfg, reviews, bert_tokenizer, seed=3) for _ in range(2))
    other_seed = build_augmenter(cfg, reviews, bert_tokenizer, seed=4)
    text = reviews[5]
    assert first(text, ONLINE, 0, 5) == again(text, ONLINE, 0, 5)
    assert first(text, ONLINE, 1, 5) != first(text, ONLINE, 0, 5)
    assert other_seed(text, ONLINE, 0, 5) != first(text, ONLINE, 0, 5)


def build(make_cfg: Callable[..., DictConfig], *overrides: str) -> TextClassificationDataModule:
    cfg = make_cfg(
        "data.limit_train=48", "data.limit_val=16", "data.limit_test=16", "data.max_length=64", *overrides
    )
    dm = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    dm.setup()
    return dm


def test_validation_and_test_data_are_identical_with_and_without_augmentation(
    make_cfg: Callable[..., DictConfig],
) -> None:
    plain = build(make_cfg)
    for mode in ("online", "offline"):
        augmented = build(make_cfg, f"data.augmentation.mode={mode}")
        for split, loader in (("validation", "val_dataloader"), ("test", "test_dataloader")):
            assert augmented.splits[split].data.table.equals(plain.splits[split].data.table)
            for a, b in zip(getattr(augmented, loader)(), getattr(plain, loader)(), strict=True):
                assert all(torch.equal(a[k], b[k]) for k in b)
        train_items = augmented.train_dataloader().dataset
        assert len(train_items) == (2 if mode == "offline" else 1) * len(plain.splits["train"])


def test_offline_adds_k_copies_with_unchanged_labels(make_cfg: Callable[..., DictConfig]) -> None:
    plain = build(make_cfg)
    dm = build(make_cfg, "data.augmentation.mode=offline", "data.augmentation.copies=2")
    original, train = plain.texts["train"], dm.texts["train"]
    assert len(train) == 3 * len(original)
    assert list(train["label"]) == list(original["label"]) * 3
    copies = [train.select(range(k * len(original), (k + 1) * len(original)))["text"] for k in range(3)]
    assert copies[0] == original["text"]
    assert copies[1] != copies[0] and copies[2] != copies[1]


def test_online_items_keep_labels_and_change_every_epoch(make_cfg: Callable[..., DictConfig]) -> None:
    dm = build(make_cfg, "data.augmentation.mode=online")
    dataset = dm.train_dataloader().dataset
    assert isinstance(dataset, OnlineAugmentedDataset)
    labels = dm.texts["train"]["label"]
    for row in range(len(dataset)):
        assert dataset[(0, row)]["labels"] == labels[row] == dataset[(1, row)]["labels"]
    changed = sum(
        dataset[(0, row)]["input_ids"] != dataset[(1, row)]["input_ids"] for row in range(len(dataset))
    )
    assert changed >= 0.9 * len(dataset)
    rebuilt = build(make_cfg, "data.augmentation.mode=online").train_dataloader().dataset
    assert all(dataset[(0, row)] == rebuilt[(0, row)] for row in range(len(dataset)))


class _Recorder(L.LightningModule):
    """A one-parameter module: training only records which (epoch, row) items its batches came from."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.weight.sum() * batch["input_ids"].float().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_online_epoch_reaches_the_dataset_in_a_real_fit(
    make_cfg: Callable[..., DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    dm = build(make_cfg, "data.augmentation.mode=online")
    seen: list[tuple[int, int]] = []
    original = OnlineAugmentedDataset.__getitem__
    monkeypatch.setattr(
        OnlineAugmentedDataset, "__getitem__", lambda self, key: seen.append(key) or original(self, key)
    )
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[EpochSeed(1)],
    )
    trainer.fit(_Recorder(), datamodule=dm)
    assert sorted({epoch for epoch, _ in seen}) == [0, 1, 2]


def test_unknown_operation_lists_the_registered_ones(make_cfg: Callable[..., DictConfig]) -> None:
    with pytest.raises(ConfigError, match="Unknown augmentation 'shout'.*Registered: delete, insert, mask"):
        check_buildable(make_cfg("data.augmentation.ops.shout=0.1"))  # registries: checked before any data work
    with pytest.raises(ConfigError, match="data.augmentation.ops.mask"):
        make_cfg("data.augmentation.ops.mask=1.5")
    with pytest.raises(ConfigError, match="at least one operation"):
        make_cfg("data.augmentation.mode=online", *(f"data.augmentation.ops.{n}=0" for n in AUGMENTATIONS))
