"""The data report: figures checked against independent computations on a small real-text dataset."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from src.cli.data_report import main as data_report_main
from src.datamodules.cleaning import clean_text
from src.datamodules.text_classification import TextClassificationDataModule
from src.modules.model_builder import load_tokenizer
from src.reporting.data_profile import build_report, padding_comparison, padding_share, write_report


def test_padding_share_by_hand() -> None:
    lengths = np.array([2, 4, 3, 3])
    assert padding_share(lengths, [0, 1, 2, 3], batch_size=2) == pytest.approx(1 - 12 / 14)  # pads: 2 + 0
    assert padding_share(lengths, [0, 2, 1, 3], batch_size=2) == pytest.approx(1 - 12 / 14)  # pads: 1 + 1
    assert padding_share(lengths, [2, 3, 0, 1], batch_size=2) == pytest.approx(1 - 12 / 12 + 2 / 14)


def test_length_grouping_cuts_padding_on_varied_lengths() -> None:
    lengths = np.random.default_rng(0).integers(5, 400, size=2000)
    padding = padding_comparison(lengths, max_length=256, batch_size=16, seed=0)
    assert padding["length_grouped"] < 0.5 * padding["shuffled"]
    assert padding["saved"] == pytest.approx(padding["shuffled"] - padding["length_grouped"])


@pytest.fixture
def report_dm(
    make_cfg: Callable[..., DictConfig],
    make_imbalanced: Callable[..., pd.DataFrame],
    write_dataset: Callable[..., Path],
) -> TextClassificationDataModule:
    """Train 60 neg / 20 pos real reviews + 3 repeats + 2 texts empty after cleaning; test shares 4 rows."""
    frame = make_imbalanced(60, 20, chars=2000)
    train = pd.concat(
        [frame, frame.head(3), pd.DataFrame({"text": ["<br /><br />", " &nbsp; "], "label": [0, 1]})]
    )
    test = pd.concat([make_imbalanced(70, 10, chars=500).tail(16), frame.tail(4)])
    folder = write_dataset({"train": train, "validation": frame.head(10), "test": test})
    cfg = make_cfg(
        f"data.path={folder}",
        "data.val_split=validation",
        "data.limit_train=null",
        "data.limit_val=null",
        "data.limit_test=null",
        "data.max_length=128",
        "data.batch_size=8",
        "data.balancing.strategy=undersample",
    )
    return TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)


def test_report_figures(report_dm: TextClassificationDataModule, tmp_path: Path) -> None:
    report, lengths = build_report(report_dm)
    train = report["splits"]["train"]
    assert (train["rows_loaded"], train["dropped_by_cleaning"], train["rows"]) == (85, 2, 83)
    texts = list(report_dm.cleaned["train"]["text"])
    raw = report_dm.raw["train"]["text"]
    assert train["changed_by_cleaning"] == sum(clean_text(t, report_dm.cfg.cleaning) != t for t in raw)
    assert report["duplicates"]["within"] == {"train": 3, "validation": 0, "test": 0}
    assert report["duplicates"]["across"]["train/test"] == 4
    assert report["duplicates"]["across"]["train/validation"] == 10
    assert report["balancing"]["before_balancing"] == {"negative": 63, "positive": 20}
    assert report["balancing"]["after_balancing"] == {"negative": 20, "positive": 20}

    # untruncated lengths from the tokenizer directly, and consistency with the datamodule's truncation
    direct = np.array([len(ids) for ids in report_dm.tokenizer(texts)["input_ids"]])
    assert np.array_equal(lengths["train"], direct)
    assert train["tokens"]["percentiles"]["p50"] == pytest.approx(np.median(direct))
    assert train["tokens"]["truncated_share"]["128"] == pytest.approx((direct > 128).mean())
    report_dm.splits = {}
    report_dm.texts = {**report_dm.texts, "train": report_dm.cleaned["train"]}  # tokenize the unbalanced rows
    report_dm.setup()
    tokenized = np.asarray(report_dm.splits["train"].with_format(None)["length"])
    assert np.array_equal(np.minimum(direct, 128), tokenized)
    assert report["padding"]["length_grouped"] <= report["padding"]["shuffled"]

    files = write_report(report, lengths, tmp_path / "report")
    markdown = files["markdown"].read_text()
    assert "| train | 85 |" in markdown and "truncated at 512" in markdown and "train/test 4" in markdown
    for key in ("token_lengths", "class_counts"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_entry_point_writes_the_report_and_logs_it_to_wandb(tmp_path: Path, data_cache: Path) -> None:
    code = data_report_main(
        [
            "experiment=imdb_tiny",
            f"run_dir={tmp_path}",
            f"data.cache_dir={data_cache}",
            "data.limit_train=40",
            "data.limit_val=8",
            "data.limit_test=8",
            "logger=wandb",
            "logger.wandb.mode=offline",
        ]
    )
    assert code == 0
    report_dir = tmp_path / "report"
    assert {"report.md", "report.json", "token_lengths.png", "class_counts.png"} <= {
        p.name for p in report_dir.iterdir()
    }
    runs = list((report_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert (runs[0] / "files" / "report.md").is_file()
    assert list((runs[0] / "files" / "media" / "images" / "data").glob("token_lengths*.png"))
