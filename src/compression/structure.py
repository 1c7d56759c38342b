"""Structured pruning of BERT-family encoders: attention heads and feed-forward neurons.

During training whole units are masked with `torch.nn.utils.prune` (shapes stay fixed, so optimizer,
DDP and checkpoints keep working); `remove_units` then deletes them for real with
`transformers.pytorch_utils.prune_linear_layer`, which makes the model smaller and faster.
A unit record `{"heads": {layer: [head ids]}, "ffn": {layer: [neuron ids]}}` travels with checkpoints
and int8 exports, so a loader can rebuild the smaller architecture.
"""

from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune
from transformers.pytorch_utils import prune_linear_layer

from src.errors import ConfigError
from src.modules import anatomy
from src.modules.anatomy import ATTENTION_OUT, FFN_IN, FFN_OUT, QKV, SELF_ATTENTION

UnitRecord = dict[str, dict[int, list[int]]]


def require_encoder_layers(model: nn.Module) -> nn.ModuleList:
    """`anatomy.encoder_layers`, required: a ConfigError for a model outside the BERT family."""
    layers = anatomy.encoder_layers(model)
    if layers is None:
        raise ConfigError(f"Structured pruning (heads / ffn) supports BERT-family encoders; "
                          f"{type(model).__name__} has none. Use unstructured pruning for this model.")
    return layers


def head_slices(self_attn: nn.Module, heads: list[int]) -> torch.Tensor:
    """Row indices of `heads` in the Q/K/V projections (and columns of the attention output)."""
    size = self_attn.attention_head_size
    if not heads:
        return torch.empty(0, dtype=torch.long)
    return torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads])


def head_scores(layer: nn.Module) -> torch.Tensor:
    """L2 norm of each head's Q/K/V rows and output-projection columns (effective, masked weights)."""
    self_attn, out = layer.get_submodule(SELF_ATTENTION), layer.get_submodule(ATTENTION_OUT)
    size, n = self_attn.attention_head_size, self_attn.num_attention_heads
    rows = sum(getattr(self_attn, p).weight.detach().reshape(n, size, -1).pow(2).sum((1, 2)) for p in QKV)
    cols = out.weight.detach().reshape(out.out_features, n, size).pow(2).sum((0, 2))
    return (rows + cols).sqrt()


def ffn_scores(layer: nn.Module) -> torch.Tensor:
    """L2 norm of each feed-forward neuron: its input row (and bias) plus its output column."""
    inner, outer = layer.get_submodule(FFN_IN), layer.get_submodule(FFN_OUT)
    return (inner.weight.detach().pow(2).sum(1) + inner.bias.detach().pow(2)
            + outer.weight.detach().pow(2).sum(0)).sqrt()


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the `count` lowest scores (ties broken by index, so every DDP rank agrees)."""
    order = sorted(range(len(scores)), key=lambda i: (float(scores[i]), i))
    return sorted(order[:count])


def unit_mask(size: int, dropped: torch.Tensor, like: torch.Tensor, dim: int) -> torch.Tensor:
    """A 0/1 mask shaped like `like` with the `dropped` indices of dimension `dim` zeroed."""
    mask = torch.ones(size, dtype=like.dtype, device=like.device)
    mask[dropped.to(like.device)] = 0
    shape = [1] * like.ndim
    shape[dim] = size
    return mask.view(shape).expand_as(like).clone()


def mask_heads(layer: nn.Module, heads: list[int]) -> None:
    """Zero `heads` of one layer through pruning masks on Q/K/V (weights + biases) and the output columns."""
    self_attn, out = layer.get_submodule(SELF_ATTENTION), layer.get_submodule(ATTENTION_OUT)
    dropped = head_slices(self_attn, heads)
    for proj in (getattr(self_attn, p) for p in QKV):
        for name in ("weight", "bias"):
            tensor = getattr(proj, name)
            prune.custom_from_mask(proj, name, unit_mask(tensor.shape[0], dropped, tensor, 0))
    prune.custom_from_mask(out, "weight", unit_mask(out.in_features, dropped, out.weight, 1))


def mask_ffn(layer: nn.Module, neurons: list[int]) -> None:
    """Zero feed-forward `neurons` of one layer (intermediate rows + bias, output columns)."""
    inner, outer = layer.get_submodule(FFN_IN), layer.get_submodule(FFN_OUT)
    dropped = torch.tensor(neurons, dtype=torch.long)
    prune.custom_from_mask(inner, "weight", unit_mask(inner.out_features, dropped, inner.weight, 0))
    prune.custom_from_mask(inner, "bias", unit_mask(inner.out_features, dropped, inner.bias, 0))
    prune.custom_from_mask(outer, "weight", unit_mask(outer.in_features, dropped, outer.weight, 1))


def masked_units(model: nn.Module, kind: str) -> dict[int, list[int]]:
    """Heads or neurons whose effective weights are all zero, per layer (what `remove_units` deletes)."""
    score = head_scores if kind == "heads" else ffn_scores
    found = {}
    for index, layer in enumerate(require_encoder_layers(model)):
        zero = [i for i, s in enumerate(score(layer)) if float(s) == 0.0]
        if zero:
            found[index] = zero
    return found


def remove_units(model: nn.Module, record: UnitRecord) -> None:
    """Delete the recorded heads / neurons for real, updating each attention's head count."""
    layers = require_encoder_layers(model) if record.get("heads") or record.get("ffn") else []
    for index, heads in record.get("heads", {}).items():
        _remove_heads(layers[int(index)], heads)
    for index, neurons in record.get("ffn", {}).items():
        _remove_ffn(layers[int(index)], neurons)


def _remove_heads(layer: nn.Module, heads: list[int]) -> None:
    self_attn = layer.get_submodule(SELF_ATTENTION)
    keep = [h for h in range(self_attn.num_attention_heads) if h not in set(heads)]
    if not keep:
        raise ValueError("Cannot remove every attention head of a layer.")
    index = head_slices(self_attn, keep)
    for name in QKV:
        setattr(self_attn, name, prune_linear_layer(getattr(self_attn, name), index))
    layer.set_submodule(ATTENTION_OUT, prune_linear_layer(layer.get_submodule(ATTENTION_OUT), index, dim=1))
    self_attn.num_attention_heads = len(keep)
    self_attn.all_head_size = len(keep) * self_attn.attention_head_size


def _remove_ffn(layer: nn.Module, neurons: list[int]) -> None:
    drop = set(neurons)
    keep = torch.tensor([i for i in range(layer.get_submodule(FFN_IN).out_features) if i not in drop])
    layer.set_submodule(FFN_IN, prune_linear_layer(layer.get_submodule(FFN_IN), keep))
    layer.set_submodule(FFN_OUT, prune_linear_layer(layer.get_submodule(FFN_OUT), keep, dim=1))


def normalize_record(record: dict[str, Any] | None) -> UnitRecord:
    """A unit record with integer layer keys (JSON / YAML round trips turn them into strings)."""
    record = record or {}
    return {kind: {int(k): [int(i) for i in v] for k, v in record.get(kind, {}).items()}
            for kind in ("heads", "ffn")}
