"""Magnitude pruning helpers on top of `torch.nn.utils.prune`: targets, schedule, permanence, sparsity."""

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import prune

from src.modules.anatomy import HEAD_NAMES, WEIGHT_LAYERS, named_in


def prunable_weights(model: nn.Module, include_embeddings: bool = False, include_classifier: bool = False,
                     exclude: tuple[str, ...] = ()) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear / GPT-2 Conv1D (and optionally Embedding) weight to prune.

    LayerNorm is never pruned; embeddings and the classification head only when asked to.
    """
    kinds = WEIGHT_LAYERS + ((nn.Embedding,) if include_embeddings else ())
    skip = exclude + (() if include_classifier else HEAD_NAMES)
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, kinds) and not named_in(name, skip)]


def cubic_sparsity(step: int, start: int, end: int, target: float, initial: float = 0.0) -> float:
    """Gradual schedule of Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) * (1 - progress)^3."""
    if step < start:
        return 0.0
    progress = 1.0 if end <= start else min(1.0, (step - start) / (end - start))
    return target + (initial - target) * (1.0 - progress) ** 3


def pruning_hooks(module: nn.Module) -> Iterator[prune.BasePruningMethod]:
    """The pruning re-parametrisations registered on one module."""
    return (h for h in list(module._forward_pre_hooks.values()) if isinstance(h, prune.BasePruningMethod))


def make_permanent(model: nn.Module) -> None:
    """`prune.remove` everywhere: masks folded into plain parameters, so a plain model loads the weights."""
    for module in model.modules():
        for hook in pruning_hooks(module):
            prune.remove(module, hook._tensor_name)


def fold_masks(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with every `<p>_orig` * `<p>_mask` pair replaced by the plain (pruned) `<p>`."""
    folded = {}
    for key, value in state_dict.items():
        if key.endswith("_mask") and key[:-5] + "_orig" in state_dict:
            continue
        if key.endswith("_orig") and key[:-5] + "_mask" in state_dict:
            folded[key[:-5]] = value * state_dict[key[:-5] + "_mask"]
        else:
            folded[key] = value
    return folded


def sparsity(weights: list[tuple[str, nn.Module]]) -> tuple[float, dict[str, float]]:
    """(global sparsity, per-layer sparsity) of the effective weights, zeros / elements."""
    per_layer, zeros, total = {}, 0, 0
    for name, module in weights:
        weight = module.weight.detach()
        layer_zeros = int((weight == 0).sum())
        per_layer[name] = layer_zeros / weight.numel()
        zeros, total = zeros + layer_zeros, total + weight.numel()
    return (zeros / total if total else 0.0), per_layer
