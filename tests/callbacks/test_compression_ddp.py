"""Pruning + QAT + early stopping + checkpointing in one run under DDP (2 CPU processes over gloo):
the run finishes and the final pruning masks and int8 weight scales are identical on both ranks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import REPO_ROOT


@pytest.mark.slow  # two DDP processes: ~30 s (make test < 8 min; in make test-all)
def test_pruning_qat_early_stopping_under_ddp_cpu(tmp_path, data_cache):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "src.cli.train", "experiment=imdb_tiny", "trainer=ddp_cpu",
               "callbacks=compress", "trainer.max_epochs=2", "data.limit_train=64", "data.limit_val=32",
               "data.limit_test=32", "data.batch_size=16", "logger=csv", "trainer.enable_progress_bar=false",
               f"run_dir={run_dir}", f"data.cache_dir={data_cache}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    def rank_records(kind: str) -> list[dict]:
        return [json.loads((run_dir / "compression" / f"{kind}-rank{r}.json").read_text()) for r in (0, 1)]

    pruning = rank_records("pruning")
    assert pruning[0]["mask_sha256"] == pruning[1]["mask_sha256"]
    assert pruning[0]["global_sparsity"] == pytest.approx(0.5, abs=0.01)
    qat = rank_records("qat")
    assert qat[0]["scale_sha256"] == qat[1]["scale_sha256"] and qat[0]["layers"]
    assert (run_dir / "compression" / "qat_int8.safetensors").is_file()
    assert json.loads(Path(run_dir / "metrics.json").read_text())["test"]["test/acc"] >= 0.0
