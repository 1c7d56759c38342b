"""Balancing on a real 90 % / 10 % IMDB slice: counts each strategy promises, class-weighted loss by hand."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import WeightedRandomSampler

from src.builders import check_buildable
from src.datamodules.augmentation import Augmenter, build_augmenter
from src.datamodules.balancing import BALANCERS, Balanced, class_counts
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError, DataError
from src.modules.model_builder import load_tokenizer
from src.modules.text_classifier import TextClassifier
from src.schemas import AugmentationConfig


@pytest.fixture
def skewed(make_imbalanced: Callable[..., pd.DataFrame]) -> Dataset:
    """180 negative and 20 positive real reviews."""
    return Dataset.from_pandas(make_imbalanced(180, 20), preserve_index=False)


@pytest.fixture
def augmenter(skewed: Dataset, make_cfg: Callable[..., DictConfig]) -> Augmenter:
    tokenizer = load_tokenizer(make_cfg().model)
    return build_augmenter(OmegaConf.structured(AugmentationConfig), skewed["text"], tokenizer, seed=0)


def run(strategy: str, dataset: Dataset, augmenter: Augmenter | None = None) -> Balanced:
    return BALANCERS.get_builder(strategy)(dataset, 2, 42, augmenter)


def test_none_keeps_everything(skewed: Dataset) -> None:
    result = run("none", skewed)
    assert class_counts(result.dataset, 2) == [180, 20]
    assert result.class_weights is None and result.sampling_weights is None


def test_undersample_keeps_minority_count_of_original_rows(skewed: Dataset) -> None:
    result = run("undersample", skewed)
    assert class_counts(result.dataset, 2) == [20, 20]
    assert set(result.dataset["text"]) <= set(skewed["text"])
    assert len(set(result.dataset["text"])) == 40  # no row twice
    assert set(t for t, y in zip(skewed["text"], skewed["label"], strict=True) if y == 1) <= set(
        result.dataset["text"]
    )


def test_oversample_duplicates_minority_rows_up_to_majority(skewed: Dataset) -> None:
    result = run("oversample", skewed)
    assert class_counts(result.dataset, 2) == [180, 180]
    extra = result.dataset.select(range(200, 360))
    minority_texts = {t for t, y in zip(skewed["text"], skewed["label"], strict=True) if y == 1}
    assert set(extra["label"]) == {1} and set(extra["text"]) <= minority_texts
    assert result.dataset.select(range(200))["text"] == skewed["text"]


def test_synthetic_adds_augmented_minority_copies(skewed: Dataset, augmenter: Augmenter) -> None:
    result = run("synthetic", skewed, augmenter)
    assert class_counts(result.dataset, 2) == [180, 180]
    extra = result.dataset.select(range(200, 360))
    assert set(extra["label"]) == {1}
    assert len(set(extra["text"]) - set(skewed["text"])) >= 150  # new texts, not plain duplicates
    assert "[MASK]" in " ".join(extra["text"])
    with pytest.raises(ConfigError, match="needs augmentation operations"):
        run("synthetic", skewed, None)


def test_class_weighted_loss_weights_are_sklearn_balanced(skewed: Dataset) -> None:
    result = run("class_weighted_loss", skewed)
    assert class_counts(result.dataset, 2) == [180, 20]
    assert result.class_weights == pytest.approx([200 / (2 * 180), 200 / (2 * 20)])


def test_weighted_sampler_draws_classes_equally(skewed: Dataset) -> None:
    result = run("weighted_sampler", skewed)
    assert class_counts(result.dataset, 2) == [180, 20]
    assert result.sampling_weights == pytest.approx([1 / 180, 1 / 20])
    labels = np.asarray(skewed["label"])
    weights = np.asarray(result.sampling_weights)[labels]
    draws = list(WeightedRandomSampler(weights.tolist(), 20_000, generator=torch.Generator().manual_seed(0)))
    assert abs(labels[draws].mean() - 0.5) < 0.02


def test_missing_class_is_a_clear_error(skewed: Dataset) -> None:
    only_negative = skewed.filter(lambda row: row["label"] == 0)
    with pytest.raises(DataError, match=r"class id\(s\) \[1\] have no training rows"):
        run("undersample", only_negative)


def test_class_weighted_loss_equals_hand_computation(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg()
    weights = [0.5, 4.0]
    module = TextClassifier(
        OmegaConf.to_container(cfg.model, resolve=True), ["neg", "pos"], class_weights=weights
    )
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.5], [0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    log_probs = logits - logits.exp().sum(dim=1, keepdim=True).log()
    w = torch.tensor(weights)[labels]
    by_hand = -(w * log_probs[torch.arange(4), labels]).sum() / w.sum()
    assert module.objective(logits, labels).item() == pytest.approx(by_hand.item(), rel=1e-6)
    plain = TextClassifier(OmegaConf.to_container(cfg.model, resolve=True), ["neg", "pos"])
    assert plain.objective(logits, labels).item() == pytest.approx(
        -log_probs[torch.arange(4), labels].mean().item()
    )


def test_datamodule_applies_the_strategy_and_exposes_class_weights(
    make_cfg: Callable[..., DictConfig],
    make_imbalanced: Callable[..., pd.DataFrame],
    write_dataset: Callable[..., Path],
) -> None:
    folder = write_dataset({"train": make_imbalanced(270, 30), "test": make_imbalanced(20, 20)})
    base = [
        f"data.path={folder}",
        "data.limit_train=null",
        "data.limit_val=null",
        "data.limit_test=null",
        "data.max_length=32",
    ]
    for strategy, expected in {
        "undersample": [27, 27],
        "oversample": [243, 243],
        "weighted_sampler": [243, 27],
    }.items():
        cfg = make_cfg(*base, f"data.balancing.strategy={strategy}")
        dm = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
        dm.setup()
        assert dm.class_counts["before_balancing"] == [243, 27]
        assert class_counts(dm.texts["train"], 2) == expected == dm.class_counts["final"]
        assert len(dm.splits["train"]) == sum(expected)
        assert dm.class_weights is None
    cfg = make_cfg(*base, "data.balancing.strategy=class_weighted_loss")
    dm = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    assert dm.class_weights == pytest.approx([270 / 2 / 243, 270 / 2 / 27])


def test_config_errors(make_cfg: Callable[..., DictConfig]) -> None:
    with pytest.raises(
        ConfigError, match="Unknown balancing strategy 'smote'.*Registered: class_weighted_loss"
    ):
        check_buildable(make_cfg("data.balancing.strategy=smote"))  # registries: checked before any data work
    with pytest.raises(ConfigError, match="data.group_by_length"):
        make_cfg("data.balancing.strategy=weighted_sampler", "data.group_by_length=true")
