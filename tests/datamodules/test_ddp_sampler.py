"""weighted_sampler under a real 2-process DDP fit (CPU, gloo): disjoint rank shares, balanced union."""

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.config import REPO_ROOT

SCRIPT = Path(__file__).with_name("ddp_sampler_run.py")


@pytest.mark.slow  # two DDP processes: ~22 s (make test < 8 min; in make test-all)
def test_ranks_split_one_balanced_draw(
    tmp_path: Path, make_imbalanced: Callable[..., pd.DataFrame], write_dataset: Callable[..., Path]
) -> None:
    folder = write_dataset({"train": make_imbalanced(900, 100, chars=120), "test": make_imbalanced(10, 10)})
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), str(tmp_path / "cache"), str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["sampler"] == "DistributedSamplerWrapper"  # Lightning wrapped our WeightedRandomSampler
    labels = np.asarray(ranks[0]["labels"])
    assert labels.mean() == 0.1  # 810 / 90 after the stratified validation split
    for epoch in ("0", "1"):
        draw = ranks[0]["draws"][int(epoch)]
        assert draw == ranks[1]["draws"][int(epoch)]  # same weighted draw on both ranks (EpochSeed)
        shares = [r["rows"][epoch] for r in ranks]
        assert len(shares[0]) == len(shares[1]) == len(draw) // 2
        assert Counter(shares[0]) + Counter(shares[1]) == Counter(draw)  # disjoint shares, union = the draw
        assert abs(labels[shares[0] + shares[1]].mean() - 0.5) < 0.06  # 90/10 data, drawn about 50/50
    assert ranks[0]["draws"][0] != ranks[0]["draws"][1]  # a new draw every epoch
