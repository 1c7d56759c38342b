"""Checks on a composed config that types alone cannot express: registry names, ranges, hardware."""

from collections.abc import Iterable

import torch
from omegaconf import DictConfig

from src.errors import ConfigError


def require_choice(key: str, value: object, allowed: Iterable[object]) -> None:
    """Fail with the key and the allowed values when `value` is not one of them."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"Bad value {value!r} for '{key}'. Allowed: {', '.join(map(str, allowed))}.")


def require(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(f"Bad value for '{key}': {problem}.")


def validate_run_config(cfg: DictConfig) -> None:
    """Validate every group; registries are imported here so that adding one needs no edit."""
    _validate_data(cfg.data)
    _validate_model(cfg.model)
    _validate_trainer(cfg.trainer)
    from src.callbacks.registry import CALLBACKS

    for name in cfg.callbacks:
        CALLBACKS.check(name, key=f"callbacks.{name}")


def _validate_data(data: DictConfig) -> None:
    require_choice("data.source", data.source, ["local", "hub"])
    require_choice("data.format", data.format, ["parquet", "csv", "json"])
    require(0.0 < data.val_size < 1.0, "data.val_size", "must be between 0 and 1")
    require(len(data.label_names) >= 2, "data.label_names", "needs at least two classes")
    require(data.max_length > 0, "data.max_length", "must be positive")
    for key in ("batch_size", "eval_batch_size"):
        require(data[key] > 0, f"data.{key}", "must be positive")
    for key in ("limit_train", "limit_val", "limit_test"):
        require(data[key] is None or data[key] > 0, f"data.{key}", "must be null or positive")
    from src.datamodules.text_classification import validate_pipeline_config

    validate_pipeline_config(data)


def _validate_model(model: DictConfig) -> None:
    from src.modules.optimizers import OPTIMIZERS
    from src.modules.schedulers import SCHEDULERS

    OPTIMIZERS.check(model.optimizer.name, key="model.optimizer.name")
    SCHEDULERS.check(model.scheduler.name, key="model.scheduler.name")
    require(model.optimizer.lr > 0, "model.optimizer.lr", "must be positive")
    require(0.0 <= model.scheduler.warmup_ratio < 1.0, "model.scheduler.warmup_ratio", "must be in [0, 1)")
    require(model.pretrained or bool(model.architecture), "model.architecture",
            "a random-init model (pretrained=false) needs architecture.model_type and sizes")


def _validate_trainer(trainer: DictConfig) -> None:
    require_choice("trainer.accelerator", trainer.accelerator, ["cpu", "gpu", "cuda", "mps", "auto"])
    wants_gpu = trainer.accelerator in ("gpu", "cuda")
    if wants_gpu and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={trainer.accelerator} but this machine has no CUDA GPU. "
            "Use trainer=cpu (or trainer=ddp_cpu to test DDP with CPU processes)."
        )
