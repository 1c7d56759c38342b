"""Checks on a composed config that types alone cannot express: registry names, ranges, hardware."""

from collections.abc import Iterable
from pathlib import Path

import torch
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from src.errors import ConfigError

# Lightning precision flags a config may set (16-mixed falls back to bf16-mixed on CPU, with a warning).
PRECISIONS = ["32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true"]


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
    require(cfg.seed >= 0, "seed", "must be a non-negative integer (it seeds numpy SeedSequence streams)")
    _validate_data(cfg.data)
    _validate_model(cfg.model)
    _validate_trainer(cfg.trainer)
    _validate_compression(cfg.model)
    from src.callbacks.registry import CALLBACKS

    for name in cfg.callbacks:
        CALLBACKS.check(name, key=f"callbacks.{name}")


def _validate_compression(model: DictConfig) -> None:
    """Checkpoints that distillation / init_checkpoint need exist; distillation weights are in range."""
    kd = model.distillation
    try:
        teacher = kd.teacher_ckpt
    except InterpolationResolutionError as err:  # e.g. ${latest_checkpoint:...} found no finished run
        raise ConfigError(f"model.distillation.teacher_ckpt: {err.__cause__ or err}") from None
    for key, path in (("model.distillation.teacher_ckpt", teacher),
                      ("model.init_checkpoint", model.init_checkpoint)):
        require(path is None or Path(path).is_file(), key, f"checkpoint {path} does not exist")
    require(kd.temperature > 0, "model.distillation.temperature", "must be positive")
    require(0.0 <= kd.alpha <= 1.0, "model.distillation.alpha", "must be in [0, 1]")
    require(kd.hidden_weight >= 0, "model.distillation.hidden_weight", "must be >= 0")
    require(all(i >= 0 for i in kd.student_layers), "model.distillation.student_layers",
            "must be layer indices")


def _validate_data(data: DictConfig) -> None:
    require_choice("data.source", data.source, ["local", "hub"])
    require_choice("data.format", data.format, ["parquet", "csv", "json"])
    require(0.0 < data.val_size < 1.0, "data.val_size", "must be between 0 and 1")
    require(len(data.label_names) >= 2, "data.label_names", "needs at least two classes")
    require(data.max_length > 0, "data.max_length", "must be positive")
    require_choice("data.truncation", data.truncation, ["head", "head_tail"])
    require(0.0 <= data.head_fraction <= 1.0, "data.head_fraction", "a share of max_length in [0, 1]")
    for key in ("batch_size", "eval_batch_size"):
        require(data[key] > 0, f"data.{key}", "must be positive")
    fractions = data.train_class_fractions
    require(fractions is None or (len(fractions) == len(data.label_names) and all(0 < f <= 1 for f in fractions)),
            "data.train_class_fractions", "needs one share in (0, 1] per class in data.label_names")
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
    _validate_training_method(model)


def _validate_training_method(model: DictConfig) -> None:
    """Fine-tuning mode, regularisation and layer-wise learning-rate options (issue: training methods)."""
    from src.modules.finetuning import FINETUNE_MODES

    require_choice("model.finetune.mode", model.finetune.mode, FINETUNE_MODES)
    require_choice("model.penalty.kind", model.penalty.kind, ["l1", "l2"])
    require(model.penalty.weight >= 0, "model.penalty.weight", "must be >= 0")
    require(0.0 <= model.label_smoothing < 1.0, "model.label_smoothing", "must be in [0, 1)")
    require(0.0 < model.optimizer.layer_decay <= 1.0, "model.optimizer.layer_decay", "must be in (0, 1]")
    require(model.optimizer.head_lr is None or model.optimizer.head_lr > 0, "model.optimizer.head_lr",
            "must be null or positive")
    require(model.finetune.frozen_layers >= 0, "model.finetune.frozen_layers", "must be >= 0")


def _validate_trainer(trainer: DictConfig) -> None:
    require_choice("trainer.accelerator", trainer.accelerator, ["cpu", "gpu", "cuda", "mps", "auto"])
    require_choice("trainer.precision", trainer.precision, PRECISIONS)
    require(trainer.accumulate_grad_batches >= 1, "trainer.accumulate_grad_batches", "must be >= 1")
    wants_gpu = trainer.accelerator in ("gpu", "cuda")
    if wants_gpu and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={trainer.accelerator} but this machine has no CUDA GPU. "
            "Use trainer=cpu (or trainer=ddp_cpu to test DDP with CPU processes)."
        )
