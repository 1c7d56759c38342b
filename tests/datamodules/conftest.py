"""Fixtures of the data-pipeline tests: real IMDB rows and small local datasets written per test."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from src.config import compose


@pytest.fixture(scope="session")
def imdb_train() -> pd.DataFrame:
    """The real shared IMDB train split (25,000 rows, sorted by label)."""
    path = Path(compose(["experiment=imdb_tiny"]).data.path) / "train.parquet"
    return pd.read_parquet(path)


@pytest.fixture
def write_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Write train/test files of a local dataset into a temp folder; returns the folder."""

    def write(splits: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
        folder = tmp_path / "dataset"
        folder.mkdir(exist_ok=True)
        for split, frame in splits.items():
            path = folder / f"{split}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path)
            elif fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_json(path, orient="records", lines=True)
        return folder

    return write


@pytest.fixture
def make_imbalanced(imdb_train: pd.DataFrame) -> Callable[..., pd.DataFrame]:
    """`majority` negative and `minority` positive real reviews (cut to `chars` characters), shuffled."""

    def make(majority: int, minority: int, chars: int = 300) -> pd.DataFrame:
        frame = pd.concat([imdb_train[imdb_train.label == 0].head(majority),
                           imdb_train[imdb_train.label == 1].head(minority)])
        frame = frame.assign(text=frame.text.str.slice(0, chars))
        return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)

    return make
