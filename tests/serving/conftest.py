"""One tiny trained BERT run and its ONNX export, shared by the serving tests (training once keeps them fast)."""

from pathlib import Path

import pytest

from src.config import compose
from src.serving.pretrained import export_model
from src.training import train

QUICK = ("data.limit_train=64", "data.limit_val=32", "data.limit_test=32", "data.max_length=64",
         "trainer.max_epochs=1")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> Path:
    """The run directory of a one-epoch tiny BERT run (config.yaml, labels.json, metrics, predictions)."""
    run_dir = tmp_path_factory.mktemp("serving") / "run"
    train(compose(["experiment=imdb_tiny", f"run_dir={run_dir}", f"data.cache_dir={data_cache}",
                   "trainer.enable_progress_bar=false", "logger=csv", *QUICK]))
    return run_dir


@pytest.fixture(scope="session")
def exported(trained_run: Path) -> Path:
    """The run's last checkpoint exported with FORMAT=onnx."""
    return export_model(trained_run / "checkpoints" / "last.ckpt", trained_run.parent / "exported", onnx=True)
