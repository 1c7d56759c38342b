"""Optimizer registry: one function per optimizer, one YAML per optimizer in configs/optimizer/.

Every builder receives parameter groups (decay / no-decay, head and per-layer learning rates already
split, see `parameter_groups`) and the YAML's `args`. Variants that differ only in arguments (SGD with
momentum or Nesterov) share a function and differ in their YAML.
"""

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from src.errors import ConfigError
from src.modules.finetuning import parameter_depths
from src.registry import Registry

OPTIMIZERS = Registry("optimizer")

# Parameters whose names contain one of these are not weight-decayed (biases, LayerNorm gains).
NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight",
                    "ln_1.weight", "ln_2.weight", "ln_f.weight")

ParamGroups = Iterable[dict[str, Any]]


@OPTIMIZERS.register("sgd")
def sgd(params: ParamGroups, lr: float, **args: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, **args)


@OPTIMIZERS.register("adam")
def adam(params: ParamGroups, lr: float, **args: Any) -> torch.optim.Optimizer:
    """Adam with L2 weight decay added to the gradient (coupled); use adamw for decoupled decay."""
    return torch.optim.Adam(params, lr=lr, **args)


@OPTIMIZERS.register("adamw")
def adamw(params: ParamGroups, lr: float, **args: Any) -> torch.optim.Optimizer:
    """Adam with decoupled weight decay (Loshchilov & Hutter)."""
    return torch.optim.AdamW(params, lr=lr, **args)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: ParamGroups, lr: float, **args: Any) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=lr, **args)


@OPTIMIZERS.register("adagrad")
def adagrad(params: ParamGroups, lr: float, **args: Any) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=lr, **args)


def is_no_decay(name: str) -> bool:
    """Biases and LayerNorm gains are never weight-decayed (nor penalised by default)."""
    return any(marker in name for marker in NO_DECAY_MARKERS)


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, head_lr: float | None = None,
                     layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """Trainable parameters grouped by (learning rate, decay or not).

    Depth 0 is the embeddings, 1..L the transformer layers, L+1 the rest of the backbone and the head:
    a parameter at depth d gets lr * layer_decay ** (L + 1 - d); the head gets head_lr when set.
    """
    layered = head_lr is not None or layer_decay != 1.0
    depths, top = parameter_depths(model) if layered else ({}, 0)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = depths.get(name, top)
        is_head = head_lr is not None and depth == top + 1
        group_lr = head_lr if is_head else lr * layer_decay ** (top - min(depth, top))
        groups.setdefault((group_lr, is_no_decay(name)), []).append(param)
    return [{"params": params, "lr": group_lr, "weight_decay": 0.0 if no_decay else weight_decay}
            for (group_lr, no_decay), params in groups.items()]


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float, args: dict[str, Any],
                    head_lr: float | None = None, layer_decay: float = 1.0) -> torch.optim.Optimizer:
    """Build the registered optimizer `name` over `model`'s trainable parameters."""
    builder = OPTIMIZERS.get_builder(name)
    groups = parameter_groups(model, lr, weight_decay, head_lr, layer_decay)
    if not groups:
        raise ConfigError("No trainable parameters: check model.finetune (every parameter is frozen).")
    try:
        return builder(groups, lr=lr, **args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Bad model.optimizer.args for '{name}': {err}") from None
