"""Optimizer registry: one function per optimizer, one YAML per optimizer in configs/optimizer/.

Every builder receives parameter groups (decay / no-decay already split) and the YAML's `args`.
"""

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from src.errors import ConfigError
from src.registry import Registry

OPTIMIZERS = Registry("optimizer")

# Parameters whose names contain one of these are not weight-decayed (biases, LayerNorm gains).
NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")


@OPTIMIZERS.register("adamw")
def adamw(params: Iterable[dict[str, Any]], lr: float, **args: Any) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, **args)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group and a no-decay group (bias, LayerNorm)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if any(m in name for m in NO_DECAY_MARKERS) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    args: dict[str, Any]) -> torch.optim.Optimizer:
    """Build the registered optimizer `name` over `model`'s trainable parameters."""
    builder = OPTIMIZERS.get_builder(name)
    try:
        return builder(parameter_groups(model, weight_decay), lr=lr, **args)
    except TypeError as err:
        raise ConfigError(f"Bad model.optimizer.args for '{name}': {err}") from None
