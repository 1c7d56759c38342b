"""`data.train_class_fractions` cuts an imbalanced train slice (for balancing studies); eval splits stay as they are."""

from collections import Counter
from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError
from src.modules.model_builder import load_tokenizer

MakeCfg = Callable[..., DictConfig]


def raw_splits(cfg: DictConfig) -> dict:
    return TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed).load_raw_splits()


def test_fractions_make_a_seeded_imbalanced_train_slice(make_cfg: MakeCfg) -> None:
    cfg = make_cfg("data.limit_train=200", "data.train_class_fractions=[1.0,0.1]")
    splits = raw_splits(cfg)
    assert Counter(splits["train"]["label"]) == {0: 100, 1: 10}
    assert Counter(splits["test"]["label"]) == {0: 32, 1: 32}  # evaluation stays balanced
    assert raw_splits(cfg)["train"]["text"] == splits["train"]["text"]


@pytest.mark.parametrize("strategy", ["oversample", "synthetic", "undersample"])
def test_balancing_strategies_run_on_the_imbalanced_slice(make_cfg: MakeCfg, strategy: str) -> None:
    cfg = make_cfg("data.limit_train=200", "data.train_class_fractions=[1.0,0.1]",
                   f"data.balancing.strategy={strategy}")
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("fit")
    counts = Counter(int(y) for y in datamodule.splits["train"]["labels"])
    assert counts[0] == counts[1]


def test_fractions_must_match_the_classes(make_cfg: MakeCfg) -> None:
    with pytest.raises(ConfigError, match=r"data\.train_class_fractions.*one share in \(0, 1\] per class"):
        make_cfg("data.train_class_fractions=[1.0]")
