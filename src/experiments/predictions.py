"""Read a run's predictions_<split>.csv (light: no torch import, so notebooks and reports load fast)."""

from pathlib import Path

import numpy as np
import pandas as pd


def read_predictions(run_dir: Path, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [n, classes], labels [n]) from a run's predictions_<split>.csv."""
    table = pd.read_csv(run_dir / f"predictions_{split}.csv")
    probs = table[[c for c in table.columns if c.startswith("prob_")]].to_numpy(dtype=np.float64)
    return probs, table["label"].to_numpy(dtype=np.int64)
