"""Callback registry: `callbacks.<name>: {kwargs}` in config builds the callback registered as <name>.

Lightning's own callbacks are registered here; project callbacks register in their own file.
"""

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    OnExceptionCheckpoint,
    RichProgressBar,
)

from src.callbacks.checkpoint import LastEpochCheckpoint
from src.errors import ConfigError
from src.registry import Registry

CALLBACKS = Registry("callback")


@CALLBACKS.register("model_checkpoint")
def model_checkpoint(run_dir: Path, **kwargs: Any) -> Callback:
    kwargs.setdefault("filename", "best-{epoch:02d}-{step}")
    return LastEpochCheckpoint(dirpath=run_dir / "checkpoints", auto_insert_metric_name=False, **kwargs)


@CALLBACKS.register("early_stopping")
def early_stopping(run_dir: Path, **kwargs: Any) -> Callback:
    return EarlyStopping(**kwargs)


@CALLBACKS.register("lr_monitor")
def lr_monitor(run_dir: Path, **kwargs: Any) -> Callback:
    return LearningRateMonitor(**kwargs)


@CALLBACKS.register("progress_bar")
def progress_bar(run_dir: Path, **kwargs: Any) -> Callback:
    return RichProgressBar(**kwargs)


@CALLBACKS.register("on_exception_checkpoint")
def on_exception_checkpoint(run_dir: Path, **kwargs: Any) -> Callback:
    """Saves `checkpoints/interrupted.ckpt` on Ctrl-C or a crash, so the run can resume from it."""
    return OnExceptionCheckpoint(dirpath=run_dir / "checkpoints", filename="interrupted", **kwargs)


def build_callbacks(specs: dict[str, dict[str, Any]], run_dir: Path) -> list[Callback]:
    """Build every configured callback, in config order."""
    callbacks = []
    for name, kwargs in specs.items():
        builder = CALLBACKS.get_builder(name)
        try:
            callbacks.append(builder(run_dir, **dict(kwargs or {})))
        except TypeError as err:
            raise ConfigError(f"Bad arguments for callbacks.{name}: {err}") from None
    return callbacks
