"""Optimizers: any class `model.optimizer._target_` names (torch.optim.AdamW, torch.optim.NAdam, ...), built over
the project's parameter groups: no weight decay on biases and LayerNorm weights, an optional learning rate for
the classification head (head_lr) and layer-wise learning-rate decay (layer_decay).
"""

from typing import Any

import torch
from torch import nn

from src.errors import ConfigError
from src.instantiate import instantiate
from src.modules.anatomy import is_no_decay, parameter_depths
from src.schemas import OptimizerConfig


def parameter_groups(model: nn.Module, lr: float, weight_decay: float, head_lr: float | None = None,
                     layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """Trainable parameters grouped by (learning rate, decay or not).

    Depth 0 is the embeddings, 1..L the transformer layers, L+1 the rest of the backbone and the head:
    a parameter at depth d gets lr * layer_decay ** (L + 1 - d); the head gets head_lr when set.
    """
    layered = head_lr is not None or layer_decay != 1.0
    depths, top = _depths(model) if layered else ({}, 0)
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


def _depths(model: nn.Module) -> tuple[dict[str, int], int]:
    found = parameter_depths(model)
    if found is None:
        raise ConfigError(f"model.optimizer.head_lr / layer_decay need a layer stack, which {type(model).__name__} "
                          "lacks: leave them unset (null / 1.0).")
    return found


def build_optimizer(model: nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The configured optimizer class over `model`'s trainable parameters, in the project's parameter groups."""
    groups = parameter_groups(model, cfg.lr, cfg.weight_decay, cfg.head_lr, cfg.layer_decay)
    if not groups:
        raise ConfigError("No trainable parameters: check model.finetune (every parameter is frozen).")
    return instantiate(cfg.target_spec(), "model.optimizer", groups)
