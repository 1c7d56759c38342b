"""Shared fixtures: compose the real configs with tiny models, small data slices and a temp run dir."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hub is unreachable here: fail fast, never retry
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # `make test` runs one worker per core: each worker
    # (and every process it starts) gets its share of the cores for torch, not all of them (oversubscribed)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(workers))))

from omegaconf import DictConfig  # noqa: E402

from src.config import compose  # noqa: E402


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenization cache for the whole session (tests that check caching use their own)."""
    return tmp_path_factory.mktemp("data-cache")


@pytest.fixture
def make_cfg(tmp_path: Path, data_cache: Path) -> Callable[..., DictConfig]:
    """Compose `experiment=imdb_tiny` (or another) with overrides, writing into a temp run dir."""

    def make(*overrides: str, experiment: str = "imdb_tiny") -> DictConfig:
        return compose([
            f"experiment={experiment}",
            f"run_dir={tmp_path / 'run'}",
            f"data.cache_dir={data_cache}",
            "trainer.enable_progress_bar=false",
            "logger=csv",
            "trainer.precision=32-true",  # not auto: the same numbers on an AMX machine as on an AVX2 one
            *overrides,
        ])

    return make
