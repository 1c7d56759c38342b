"""The debug group, the MLflow logger and the throughput monitor, each on a tiny model for a few steps."""

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import MLFlowLogger

from src.config import REPO_ROOT, available, compose
from tests.training_helpers import configured_fit

TINY = ("experiment=imdb_tiny", "logger=csv", "data.limit_train=64", "data.limit_val=32", "data.max_length=32",
        "data.batch_size=16", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false")


class AnomalyProbe(Callback):
    """Records whether autograd anomaly detection is on during training."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_train_batch_start(self, *args: object) -> None:
        self.seen.append(torch.is_anomaly_enabled())


def _fast_dev_run(trainer: L.Trainer, run_dir: Path) -> None:
    assert trainer.fast_dev_run and trainer.global_step == 1


def _limit(trainer: L.Trainer, run_dir: Path) -> None:
    assert trainer.limit_train_batches == 10 and trainer.limit_val_batches == 5 and trainer.state.finished


def _overfit(trainer: L.Trainer, run_dir: Path) -> None:
    assert trainer.overfit_batches == 4 and trainer.global_step == 2 * 4  # 4 batches per epoch, 2 epochs
    assert not any(type(c).__name__ == "EarlyStopping" for c in trainer.callbacks)


def _profiler(trainer: L.Trainer, run_dir: Path) -> None:
    assert "run_training_epoch" in (run_dir / "fit-profile.txt").read_text()


def _anomaly(trainer: L.Trainer, run_dir: Path) -> None:
    (probe,) = [c for c in trainer.callbacks if isinstance(c, AnomalyProbe)]
    assert probe.seen and all(probe.seen)


CHECKS: dict[str, tuple[tuple[str, ...], Callable[[L.Trainer, Path], None]]] = {
    "fast_dev_run": ((), _fast_dev_run),
    "limit": ((), _limit),
    "overfit": (("trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1", "callbacks=default"), _overfit),
    "profiler": (("trainer.max_steps=2",), _profiler),
    "anomaly": (("trainer.max_steps=2",), _anomaly),
}


def test_every_debug_file_is_tested() -> None:
    assert set(available("debug")) == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_debug_mode_runs_a_tiny_model(name: str, tmp_path: Path) -> None:
    overrides, check = CHECKS[name]
    check(configured_fit(compose([*TINY, f"debug={name}", *overrides]), tmp_path, [AnomalyProbe()]), tmp_path)


def test_mlflow_logs_the_run_to_a_local_store_in_the_run_directory(tmp_path: Path) -> None:
    trainer = configured_fit(compose([*TINY, "logger=mlflow", "trainer.max_steps=3"]), tmp_path)
    (logger,) = [lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)]
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    metrics = logger.experiment.get_run(logger.run_id).data.metrics
    assert "train/loss" in metrics


def test_throughput_monitor_logs_samples_and_tokens_per_second(tmp_path: Path) -> None:
    cfg = compose([*TINY, "callbacks.throughput.window_size=2", "trainer.limit_val_batches=0"])
    configured_fit(cfg, tmp_path)
    rows = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    logged = rows.dropna(subset=["train/device/samples_per_sec"]).iloc[-1]
    assert logged["train/device/samples_per_sec"] > 0 and logged["train/device/items_per_sec"] > 0
    assert logged["train/samples"] == 64
    assert 0 < logged["train/lengths"] <= 64 * 32  # real tokens: at most max_length per row


def test_wandb_check_asks_the_server_named_by_wandb_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from src import loggers

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.lab.internal:8080")
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine wandb.lab.internal login user password secret\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc_file))
    dialled = []

    def unreachable(address: tuple[str, int], timeout: float) -> None:
        dialled.append(address)
        raise OSError("no route to host")

    monkeypatch.setattr(loggers.socket, "create_connection", unreachable)
    assert loggers.resolve_wandb_mode(None) == ("offline", "http://wandb.lab.internal:8080 is unreachable")
    assert dialled == [("wandb.lab.internal", 8080)]
    netrc_file.write_text("machine api.wandb.ai login user password secret\n")  # the cloud's key is not this server's
    assert loggers.resolve_wandb_mode(None)[1].startswith("no W&B API key")


@pytest.mark.slow  # the imdb_tiny smoke run as a user starts it: about a minute
def test_a_tiny_run_prints_each_message_once_one_metrics_table_and_no_warning(tmp_path: Path, data_cache: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "src.cli.train", "experiment=imdb_tiny", f"run_dir={tmp_path}",
                             f"data.cache_dir={data_cache}", "trainer.enable_progress_bar=false"],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    output = result.stdout + result.stderr
    assert output.count("GPU available") == 1 and output.count("`Trainer.fit` stopped") == 1
    assert not re.search(r"\.py:\d+: ", output), "a warning was printed"
    assert output.count("Metrics — imdb_tiny") == 1 and "DataLoader 0" not in output  # not Lightning's tables too
    # 8 batches an epoch, 2 epochs, trainer.log_every_n_steps=2 in imdb_tiny.yaml: train/loss every 2nd step
    assert pd.read_csv(tmp_path / "csv" / "metrics.csv")["train/loss"].notna().sum() == 8
