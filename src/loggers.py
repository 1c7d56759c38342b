"""Loggers: CSV always, W&B when enabled (falling back to offline mode so logging never stops a run), and any
other Lightning logger the config names by `_target_` (logger=tensorboard, logger=mlflow)."""

import csv
import logging
import netrc
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from src.instantiate import instantiate
from src.schemas import RunConfig

log = logging.getLogger(__name__)

DEFAULT_WANDB_BASE_URL = "https://api.wandb.ai"


def wandb_base_url() -> str:
    """The W&B server: WANDB_BASE_URL (a self-hosted server) or W&B's cloud."""
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_WANDB_BASE_URL


def wandb_address() -> tuple[str, int]:
    """(host, port) of the W&B server."""
    url = urlsplit(wandb_base_url())
    return url.hostname or "", url.port or (80 if url.scheme == "http" else 443)


def has_wandb_api_key() -> bool:
    """True when W&B credentials exist (WANDB_API_KEY, or a `wandb login` entry for the server's host in the netrc
    file W&B reads: $NETRC, else ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(wandb_address()[0]) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(wandb_address(), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve_wandb_mode(configured: str | None) -> tuple[str, str | None]:
    """(mode, reason for falling back to offline or None)."""
    if configured:
        return configured, None
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"], None
    if not has_wandb_api_key():
        return "offline", "no W&B API key (set WANDB_API_KEY or run `wandb login`)"
    if not wandb_reachable():
        return "offline", f"{wandb_base_url()} is unreachable"
    return "online", None


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer continuing an existing metrics.csv: its rows and header are kept, not deleted."""

    def _check_log_dir_exists(self) -> None:
        """(Lightning's version deletes metrics.csv.) Start from the existing file's columns instead."""
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger; with `resume`, the metrics of a resumed run are appended to its metrics.csv."""

    def __init__(self, *args: Any, resume: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume = resume

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.resume:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return super().experiment


def build_loggers(cfg: RunConfig, run_dir: Path, run_name: str, config: dict[str, Any],
                  wandb_id: str | None = None, resume: bool = False) -> list[Logger]:
    """CSV logger in run_dir/csv, W&B (project, group, tags, full config) when enabled, then the configured
    `_target_` loggers (one that takes `save_dir` writes to <run_dir>/<its name>).

    `wandb_id`: the W&B run to write to; a resumed training run passes its first part's id, and W&B continues that
    run (resume="allow": created if it does not exist yet, e.g. when the first part ran offline and is unsynced).
    `resume`: a resumed run appends to csv/metrics.csv (a fresh run in the directory starts it anew)."""
    loggers: list[Logger] = [ResumableCSVLogger(save_dir=str(run_dir), name="csv", version="", resume=resume)]
    wandb_cfg = cfg.logger.wandb
    if wandb_cfg.enabled:
        wandb_logger = _wandb_logger(wandb_cfg, cfg, run_dir, run_name, config, wandb_id)
        if wandb_logger is not None:
            loggers.append(wandb_logger)
    for name, spec in cfg.logger.others().items():
        if spec is not None:
            loggers.append(instantiate(spec, f"logger.{name}", save_dir=str(run_dir / name)))
    return loggers


def local_mlflow_logger(save_dir: str, experiment_name: str = "llm-optimization-lab", run_name: str | None = None,
                        tags: dict[str, Any] | None = None, log_model: bool = False) -> MLFlowLogger:
    """Lightning's MLFlowLogger keeping the run in `save_dir`: an SQLite store (MLflow 3 refuses new file stores)
    with the artifacts beside it. For an MLflow server, name MLFlowLogger itself with its tracking_uri."""
    store = Path(save_dir).resolve()
    store.mkdir(parents=True, exist_ok=True)
    return MLFlowLogger(experiment_name=experiment_name, run_name=run_name, tags=tags, log_model=log_model,
                        tracking_uri=f"sqlite:///{store / 'mlflow.db'}", artifact_location=str(store / "artifacts"))


def _wandb_logger(wandb_cfg: Any, cfg: Any, run_dir: Path, run_name: str, config: dict[str, Any],
                  wandb_id: str | None) -> WandbLogger | None:
    mode, reason = resolve_wandb_mode(wandb_cfg.mode)
    if reason:
        log.warning("W&B: switching to offline mode, %s. Sync later with `wandb sync %s/wandb/offline-run-*` "
                    "(the parts of a resumed run go into one W&B run).", reason, run_dir)
    kwargs = dict(project=wandb_cfg.project, entity=wandb_cfg.entity, group=wandb_cfg.group,
                  job_type=wandb_cfg.job_type, tags=list(cfg.tags), notes=cfg.notes, name=run_name,
                  save_dir=str(run_dir), log_model=wandb_cfg.log_model, config=config, id=wandb_id, resume="allow")
    for attempt_mode in dict.fromkeys([mode, "offline"]):
        try:
            wandb_logger = WandbLogger(mode=attempt_mode, **kwargs)
            # Lightning always passes `anonymous`, which wandb >= 0.19 ignores with a warning on every run
            wandb_logger._wandb_init.pop("anonymous", None)
            _ = wandb_logger.experiment  # start the run now, so a failure is caught here, not mid-training
            return wandb_logger
        except Exception as err:  # noqa: BLE001 - any W&B failure must not stop training
            log.warning("W&B %s mode failed (%s); trying the next fallback.", attempt_mode, err)
    log.warning("W&B disabled for this run; the CSV logger still records everything in %s.", run_dir / "csv")
    return None


@contextmanager
def finishing_wandb(loggers: list[Logger]) -> Iterator[None]:
    """Finish the W&B run when the block ends (exit code 1 if it raised): Lightning's WandbLogger leaves it open, and
    the next WandbLogger in the same process (a design's next seed) would log into it instead of starting its own."""
    exit_code = 1
    try:
        yield
        exit_code = 0
    finally:
        for logger in loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                try:
                    logger.experiment.finish(exit_code=exit_code)
                except Exception as err:  # noqa: BLE001 - logging never crashes a run
                    log.warning("W&B: could not finish the run (%s).", err)


def log_figures(loggers: list[Logger], figures: dict[str, Path]) -> None:
    """Send PNG figures to W&B when it is active (the files stay in the run directory either way)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and figures:
            try:
                for key, path in figures.items():
                    logger.log_image(key=f"test/{key}", images=[str(path)])
            except Exception as err:  # noqa: BLE001 - logging never crashes a run
                log.warning("W&B: could not log figures (%s).", err)
