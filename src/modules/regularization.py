"""Regularisation that is not the optimizer's weight decay: dropout overrides and an explicit L1/L2 penalty.

Weight decay (coupled for sgd/adam, decoupled for adamw) lives in the optimizer YAMLs, label smoothing in
the loss (`model.label_smoothing`) and gradient clipping in the trainer (`trainer.gradient_clip_val`).
"""

import torch
from torch import nn

from src.errors import ConfigError
from src.modules.anatomy import DROPOUT_ATTRIBUTES, is_no_decay
from src.schemas import DropoutConfig


def dropout_overrides(model_type: str, dropout_cfg: DropoutConfig) -> dict[str, float]:
    """transformers config attributes for the configured dropout probabilities (None = keep)."""
    wanted = {key: value for key, value in vars(dropout_cfg).items() if value is not None}
    if not wanted:
        return {}
    family = DROPOUT_ATTRIBUTES.get(model_type)
    if family is None:
        raise ConfigError(f"model.dropout overrides are not mapped for model_type '{model_type}'. Mapped: "
                          f"{', '.join(DROPOUT_ATTRIBUTES)} (add it to src.modules.anatomy.DROPOUT_ATTRIBUTES).")
    overrides = {}
    for key, value in wanted.items():
        if key not in family:
            raise ConfigError(f"model.dropout.{key} has no counterpart in {model_type} models "
                              f"(they have {', '.join(family)}).")
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"model.dropout.{key}={value} must be in [0, 1).")
        overrides.update({attribute: value for attribute in family[key]})
    return overrides


def penalised_parameters(model: nn.Module, patterns: list[str]) -> list[torch.Tensor]:
    """Trainable parameters whose name contains one of `patterns` (default: every decayed weight)."""
    chosen = [p for name, p in model.named_parameters() if p.requires_grad
              and (any(s in name for s in patterns) if patterns else not is_no_decay(name))]
    if not chosen:
        raise ConfigError(f"model.penalty.params={patterns} matches no trainable parameter.")
    return chosen


def penalty(params: list[torch.Tensor], kind: str) -> torch.Tensor:
    """sum |w| (l1) or sum w^2 (l2) over `params`."""
    if kind == "l1":
        return torch.stack([p.abs().sum() for p in params]).sum()
    if kind == "l2":
        return torch.stack([p.pow(2).sum() for p in params]).sum()
    raise ConfigError(f"Bad value '{kind}' for 'model.penalty.kind'. Allowed: l1, l2.")
