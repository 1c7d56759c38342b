"""The datamodule end to end: tokenization cache hits/misses, sources and their errors, label mapping,
a 4-class run through `train()`, and the hub-only AG News config."""

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import DictConfig

from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import DataError, HubUnreachableError
from src.modules.model_builder import load_tokenizer
from src.training import train

TOPICS = ["world", "sports", "business", "science"]
WORDS = {
    "world": "government election minister war border treaty president",
    "sports": "match goal team season coach league player",
    "business": "market shares profit company bank investors quarter",
    "science": "research space software computer study scientists internet",
}


def topic_frame(rows: int, seed: int) -> pd.DataFrame:
    """Short texts of four topics with string labels (a stand-in for AG News, which is not offline)."""
    generator = torch.Generator().manual_seed(seed)
    labels, texts = [], []
    for i in range(rows):
        topic = TOPICS[i % 4]
        words = WORDS[topic].split()
        picks = torch.randint(len(words), (6,), generator=generator).tolist()
        texts.append("News: " + " ".join(words[j] for j in picks) + ".")
        labels.append(topic)
    return pd.DataFrame({"headline": texts, "topic": labels})


def datamodule(cfg: DictConfig) -> TextClassificationDataModule:
    return TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)


def test_tokenization_cache_hit_and_misses(
    make_cfg: Callable[..., DictConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = TextClassificationDataModule._tokenize_batch
    monkeypatch.setattr(
        TextClassificationDataModule,
        "_tokenize_batch",
        lambda self, batch: calls.append(len(batch["text"])) or original(self, batch),
    )
    base = [
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.limit_train=40",
        "data.limit_val=8",
        "data.limit_test=8",
    ]

    def setup_rows(*overrides: str) -> int:
        calls.clear()
        datamodule(make_cfg(*base, *overrides)).setup()
        return sum(calls)

    assert setup_rows() == 56  # first setup: all three splits tokenized
    assert setup_rows() == 0  # second setup: every split read from the cache
    assert setup_rows("data.max_length=64") == 56  # max length changed: miss
    assert setup_rows("data.cleaning.lowercase=true") == 56  # cleaning changed: miss
    assert setup_rows("data.balancing.strategy=oversample") == 40  # only the train rows changed
    assert setup_rows("data.max_length=64") == 0
    assert len(list((tmp_path / "cache" / "tokenized" / "imdb").glob("*.arrow"))) == 10


def test_missing_column_lists_existing_columns(
    make_cfg: Callable[..., DictConfig], write_dataset: Callable[..., Path]
) -> None:
    folder = write_dataset({"train": topic_frame(40, 0), "test": topic_frame(8, 1)}, fmt="csv")
    cfg = make_cfg(
        f"data.path={folder}", "data.format=csv", f"data.label_names={TOPICS}", "data.label_column=topic"
    )
    with pytest.raises(
        DataError, match="Column 'text' \\(data.text_columns\\).*Columns that exist: headline, topic"
    ):
        datamodule(cfg).setup()


def test_label_outside_the_classes_names_the_row(
    make_cfg: Callable[..., DictConfig], write_dataset: Callable[..., Path]
) -> None:
    train = topic_frame(40, 0)
    train.loc[17, "topic"] = "weather"
    folder = write_dataset({"train": train, "test": topic_frame(8, 1)}, fmt="json")
    cfg = make_cfg(
        f"data.path={folder}",
        "data.format=json",
        f"data.label_names={TOPICS}",
        "data.text_columns=[headline]",
        "data.label_column=topic",
    )
    with pytest.raises(DataError, match="Row 17 of the train split has label 'weather'"):
        datamodule(cfg).setup()


def test_empty_split_after_cleaning_is_a_clear_error(
    make_cfg: Callable[..., DictConfig], write_dataset: Callable[..., Path]
) -> None:
    frame = pd.DataFrame({"text": ["<br />", "It is", "the", "a"] * 5, "label": [0, 1] * 10})
    folder = write_dataset({"train": frame, "test": frame})
    cfg = make_cfg(f"data.path={folder}", "data.cleaning.stop_words=true", "data.limit_train=null")
    with pytest.raises(DataError, match="empty after cleaning"):
        datamodule(cfg).setup()


def test_four_string_classes_end_to_end(
    make_cfg: Callable[..., DictConfig], write_dataset: Callable[..., Path]
) -> None:
    """CSV with string labels -> 4-class training with macro F1 per class, label mapping saved."""
    folder = write_dataset({"train": topic_frame(320, 0), "test": topic_frame(80, 1)}, fmt="csv")
    cfg = make_cfg(
        f"data.path={folder}",
        "data.format=csv",
        "data.name=topics",
        f"data.label_names={TOPICS}",
        "data.text_columns=[headline]",
        "data.label_column=topic",
        "data.limit_train=null",
        "data.limit_val=null",
        "data.limit_test=null",
        "data.max_length=32",
        "data.balancing.strategy=class_weighted_loss",
        "trainer.max_epochs=3",
        "model.optimizer.lr=3e-3",
    )
    summary = train(cfg)
    run_dir = Path(summary["run_dir"])
    mapping = json.loads((run_dir / "labels.json").read_text())
    assert mapping == {
        "id2label": {str(i): t for i, t in enumerate(TOPICS)},
        "label2id": {t: i for i, t in enumerate(TOPICS)},
    }
    assert {f"test/f1_per_class/{t}" for t in TOPICS} <= set(summary["test"])
    assert summary["test"]["test/f1_macro"] > 0.5  # 4 classes: chance is 0.25; the topic words separate them
    checkpoint = torch.load(next((run_dir / "checkpoints").glob("last*.ckpt")), weights_only=True)
    assert checkpoint["hyper_parameters"]["class_weights"] == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_ag_news_is_a_hub_only_four_class_config(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(experiment="agnews_minilm")
    assert (cfg.data.source, cfg.data.hub_name, len(cfg.data.label_names)) == ("hub", "fancyzhx/ag_news", 4)
    with pytest.raises(HubUnreachableError, match="fancyzhx/ag_news"):
        datamodule(make_cfg("model=tiny_bert", experiment="agnews_minilm")).setup()


def test_online_augmentation_trains_end_to_end(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg(
        "data.augmentation.mode=online",
        "data.limit_train=64",
        "data.limit_val=16",
        "data.limit_test=16",
        "trainer.max_epochs=2",
        "data.max_length=64",
    )
    summary = train(cfg)
    assert summary["global_step"] == 2 * 2  # 64 rows / batch 32, two epochs
    assert 0.0 <= summary["test"]["test/f1_macro"] <= 1.0


def test_sst2_experiment_uses_the_shared_glue_files(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("model=tiny_bert", "data.limit_train=64", "data.limit_val=16", experiment="sst2_minilm")
    dm = datamodule(cfg)
    dm.setup()
    assert (len(dm.splits["train"]), len(dm.splits["validation"]), len(dm.splits["test"])) == (64, 16, 872)
    assert max(dm.splits["test"].with_format(None)["length"]) <= 64
