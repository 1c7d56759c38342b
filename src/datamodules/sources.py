"""Raw data sources: local Parquet/CSV/JSON files or Hugging Face datasets by name.

Whatever the source, the result is one `datasets.Dataset` per configured split with the
columns `text` (str), `text_pair` (str, for a text pair only) and `label` (int in [0, num_classes)), checked
with clear errors.
"""

import os
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow.parquet as pq
from datasets import Dataset
from datasets.exceptions import DatasetGenerationError, DatasetNotFoundError

from src.errors import DataError, HubUnreachableError
from src.hub import OFFLINE_HINT, hub_reachable

TEXT_FIELDS = ("text", "text_pair")  # a row's one or two texts (data.text_columns), named as tokenizers call them


def split_file(data_cfg: Any, split: str) -> Path:
    return Path(data_cfg.path).expanduser() / f"{split}.{data_cfg.format}"


def load_split(data_cfg: Any, split: str) -> Dataset:
    """Load one split from the configured source, unchecked."""
    if data_cfg.source == "hub":
        return _load_hub_split(data_cfg, split)
    path = split_file(data_cfg, split)
    if not path.is_file():
        raise DataError(
            f"Data file not found: {path}. Set data.path to the folder holding {split}.{data_cfg.format} "
            "(or LAB_DATA_DIR to the shared datasets folder), or use data.source=hub with internet."
        )
    try:
        return datasets.load_dataset(data_cfg.format, data_files={split: str(path)}, split=split,
                                     cache_dir=str(Path(data_cfg.cache_dir) / "raw"))
    except DatasetGenerationError as err:
        problem = ("has no rows" if _is_empty(path)
                   else f"could not be read as {data_cfg.format} ({err.__cause__})")
        raise DataError(f"The {split} split is empty or unreadable: {path} {problem}.") from None


def _is_empty(path: Path) -> bool:
    if path.stat().st_size == 0:
        return True
    return path.suffix == ".parquet" and pq.ParquetFile(path).metadata.num_rows == 0


def _load_hub_split(data_cfg: Any, split: str) -> Dataset:
    offline_forced = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if not offline_forced and not hub_reachable():
        raise HubUnreachableError(
            f"Dataset '{data_cfg.hub_name}' must be downloaded from the Hugging Face Hub, which cannot be "
            f"reached from this machine. {OFFLINE_HINT}"
        )
    try:
        return datasets.load_dataset(data_cfg.hub_name, data_cfg.hub_config, split=split)
    except (ConnectionError, OSError, DatasetNotFoundError) as err:
        raise HubUnreachableError(f"Could not load dataset '{data_cfg.hub_name}' from the Hub: {err}. "
                                  f"{OFFLINE_HINT}") from None


def standardize(dataset: Dataset, data_cfg: Any, split: str) -> Dataset:
    """Keep `text` (and `text_pair` for a text pair) and integer `label` columns; fail clearly on missing columns,
    empty splits, bad labels."""
    columns = {**dict(zip(data_cfg.text_columns, TEXT_FIELDS, strict=False)), data_cfg.label_column: "label"}
    for column in columns:
        if column not in dataset.column_names:
            key = "label_column" if column == data_cfg.label_column else "text_columns"
            raise DataError(
                f"Column '{column}' (data.{key}) is not in the {split} split. "
                f"Columns that exist: {', '.join(dataset.column_names)}."
            )
    if len(dataset) == 0:
        raise DataError(f"The {split} split is empty ({describe_source(data_cfg, split)}).")
    dataset = dataset.select_columns(list(columns))
    renames = {column: name for column, name in columns.items() if column != name}
    if renames:
        dataset = dataset.rename_columns(renames)
    raw_labels = dataset.select_columns("label")[:]["label"]  # one batch read, not a per-row Python loop
    labels = np.asarray(_label_ids(raw_labels, list(data_cfg.label_names), split), dtype=np.int64)
    return dataset.remove_columns("label").add_column("label", labels)


def _label_ids(raw_labels: list[Any], label_names: list[str], split: str) -> list[int]:
    """Map string labels through `label_names`; check integer labels are in range. Errors name the row."""
    ids = []
    for row, value in enumerate(raw_labels):
        if isinstance(value, str):
            if value not in label_names:
                raise DataError(f"Row {row} of the {split} split has label '{value}', which is not one of "
                                f"data.label_names {label_names}.")
            ids.append(label_names.index(value))
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            raise DataError(f"Row {row} of the {split} split has no label (empty or NaN); fill it in or drop the "
                            "row.")
        elif isinstance(value, int | float) and float(value).is_integer() and 0 <= value < len(label_names):
            ids.append(int(value))  # a column with a missing value reads as floats (1.0)
        else:
            raise DataError(f"Row {row} of the {split} split has label {value!r}, outside "
                            f"0..{len(label_names) - 1} (data.label_names has {len(label_names)} classes: "
                            f"{label_names}).")
    return ids


def text_fields(dataset: Dataset) -> list[str]:
    """The standardized text columns a dataset holds: `text`, or `text` and `text_pair`."""
    return [name for name in TEXT_FIELDS if name in dataset.column_names]


def label_array(dataset: Dataset) -> np.ndarray:
    """The `label` column as a numpy array (one Arrow read instead of a Python loop over rows)."""
    return dataset.with_format("numpy", columns=["label"])[:]["label"]


def describe_source(data_cfg: Any, split: str) -> str:
    if data_cfg.source == "hub":
        return f"hub dataset {data_cfg.hub_name}"
    return str(split_file(data_cfg, split))
