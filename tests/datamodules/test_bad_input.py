"""Bad data gets a DataError that names the problem and the fix, before any training starts."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import DictConfig

from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import DataError, HubUnreachableError
from src.modules.model_builder import load_tokenizer

MakeCfg = Callable[..., DictConfig]


def write_split(folder: Path, split: str, frame: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / f"{split}.parquet")


def setup_data(cfg: DictConfig) -> TextClassificationDataModule:
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("fit")
    return datamodule


def good_frame(rows: int = 20) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"review number {i}" for i in range(rows)], "label": [i % 2 for i in range(rows)]})


def test_missing_data_path_names_the_file(make_cfg: MakeCfg, tmp_path: Path) -> None:
    cfg = make_cfg(f"data.path={tmp_path / 'nowhere'}")
    with pytest.raises(DataError, match=r"Data file not found: .*nowhere/train\.parquet.*data\.path"):
        setup_data(cfg)


def test_missing_text_column_lists_existing_columns(make_cfg: MakeCfg) -> None:
    cfg = make_cfg("data.text_columns=[review]")
    with pytest.raises(DataError, match=r"Column 'review' \(data\.text_columns\).*Columns that exist: text, label"):
        setup_data(cfg)


def test_empty_split_is_reported(make_cfg: MakeCfg, tmp_path: Path) -> None:
    write_split(tmp_path, "train", good_frame())
    write_split(tmp_path, "test", good_frame().iloc[:0])
    cfg = make_cfg(f"data.path={tmp_path}", "data.limit_train=null", "data.limit_val=null", "data.limit_test=null")
    with pytest.raises(DataError, match=r"test split is empty or unreadable: .*test\.parquet has no rows"):
        setup_data(cfg)


def test_label_out_of_range_names_the_row(make_cfg: MakeCfg, tmp_path: Path) -> None:
    bad = good_frame()
    bad.loc[7, "label"] = 5
    write_split(tmp_path, "train", bad)
    write_split(tmp_path, "test", good_frame())
    cfg = make_cfg(f"data.path={tmp_path}", "data.limit_train=null", "data.limit_val=null", "data.limit_test=null")
    with pytest.raises(DataError, match=r"Row 7 of the train split has label 5, outside 0\.\.1"):
        setup_data(cfg)


def test_hub_dataset_without_hub_points_to_local_files(make_cfg: MakeCfg) -> None:
    cfg = make_cfg("data.source=hub")
    with pytest.raises(HubUnreachableError, match=r"stanfordnlp/imdb.*make train"):
        setup_data(cfg)


def test_validation_split_is_stratified_and_seeded(make_cfg: MakeCfg) -> None:
    cfg = make_cfg("data.limit_train=null", "data.limit_val=null", "data.limit_test=200")
    def raw_splits() -> dict:
        return TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed).load_raw_splits()

    first, again = raw_splits(), raw_splits()
    assert first["validation"]["text"] == again["validation"]["text"]
    assert len(first["validation"]) == 2500
    assert sum(first["validation"]["label"]) == 1250  # IMDB is 50/50: the split keeps the ratio
    shared = set(first["validation"]["text"]) & set(first["train"]["text"])
    assert len(shared) <= 96  # only IMDB's own duplicate reviews (96 in train, per its SOURCE.md)


def test_a_missing_label_names_its_own_row(make_cfg: MakeCfg, tmp_path: Path) -> None:
    bad = good_frame().astype({"label": float})
    bad.loc[13, "label"] = float("nan")  # the column reads as floats: 0.0 in row 0 is a valid label
    write_split(tmp_path, "train", bad)
    write_split(tmp_path, "test", good_frame())
    cfg = make_cfg(f"data.path={tmp_path}", "data.limit_train=null", "data.limit_val=null", "data.limit_test=null")
    with pytest.raises(DataError, match=r"^Row 13 of the train split has no label \(empty or NaN\); fill it in"):
        setup_data(cfg)
