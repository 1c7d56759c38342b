"""Model anatomy: where the parts of a BERT- or GPT-2-family sequence classifier are, in one place.

The embeddings, the stack of transformer layers, the classification head, which parameters take no weight
decay, which config attributes hold dropout, and the attention heads and feed-forward neurons of a
BERT-family layer. Fine-tuning modes, layer-wise learning rates, gradual unfreezing, regularisation, pruning
and quantization all ask here. It imports nothing of the project, so any module can use it; a lookup that
does not fit the model returns None and the caller names the option that needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn
from transformers.pytorch_utils import Conv1D

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# Top-level modules of the classification head (BERT: pooler + classifier, GPT-2: score): left out of pruning and
# quantization unless configured.
HEAD_NAMES = ("classifier", "score", "pooler")
# The matrix-multiply layers that pruning and quantization act on (GPT-2 uses Conv1D: y = x W + b).
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, Conv1D)
# Parameters whose names contain one of these take no weight decay (biases, LayerNorm gains).
NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight", "ln_1.weight", "ln_2.weight", "ln_f.weight")
# model.dropout.<key> -> the transformers config attributes it sets, per model family (config.model_type).
DROPOUT_ATTRIBUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "bert": {"hidden": ("hidden_dropout_prob",), "attention": ("attention_probs_dropout_prob",),
             "classifier": ("classifier_dropout",)},
    "roberta": {"hidden": ("hidden_dropout_prob",), "attention": ("attention_probs_dropout_prob",),
                "classifier": ("classifier_dropout",)},
    "distilbert": {"hidden": ("dropout",), "attention": ("attention_dropout",),
                   "classifier": ("seq_classif_dropout",)},
    "gpt2": {"hidden": ("resid_pdrop", "embd_pdrop"), "attention": ("attn_pdrop",)},
}
# Inside one BERT-family encoder layer: the self-attention (its query / key / value projections), the attention
# output projection, and the feed-forward network's two projections (submodule paths).
SELF_ATTENTION = "attention.self"
QKV = ("query", "key", "value")
ATTENTION_OUT = "attention.output.dense"
FFN_IN = "intermediate.dense"
FFN_OUT = "output.dense"


def is_no_decay(name: str) -> bool:
    """Biases and LayerNorm gains are never weight-decayed (nor penalised by default)."""
    return any(marker in name for marker in NO_DECAY_MARKERS)


def named_in(name: str, parts: tuple[str, ...]) -> bool:
    """Whether a dotted module name has one of `parts` (regular expressions) as a whole component."""
    return any(re.search(rf"(^|\.){part}($|\.)", name) for part in parts)


def task_model(model: nn.Module) -> PreTrainedModel:
    """The transformers model under an optional peft wrapper (duck-typed: importing peft costs ~1 s)."""
    unwrap = getattr(model, "get_base_model", None)
    return unwrap() if callable(unwrap) else model


@dataclass
class LayerStack:
    """A classifier's backbone cut into embeddings (depth 0) and transformer layers (depth 1..L), bottom-up."""

    embeddings: list[nn.Module]
    layers: nn.ModuleList
    backbone: nn.Module


def layer_stack(model: nn.Module) -> LayerStack | None:
    """The layer stack of a BERT- or GPT-2-family classifier; None when it has no embeddings or layer list."""
    backbone = task_model(model).base_model
    embeddings = [m for name, m in backbone.named_children() if "embed" in name or isinstance(m, nn.Embedding)]
    stacks = [m for m in backbone.modules() if isinstance(m, nn.ModuleList)]
    if not embeddings or not stacks:
        return None
    return LayerStack(embeddings, max(stacks, key=len), backbone)


def parameter_depths(model: nn.Module) -> tuple[dict[str, int], int] | None:
    """Depth of every parameter by name: embeddings 0, layer i -> i + 1, rest of the backbone L + 1,
    head (everything outside the backbone) L + 2. Returns (depths, L + 1); None without a layer stack."""
    stack = layer_stack(model)
    if stack is None:
        return None
    top = len(stack.layers) + 1
    depth_of = {id(p): top for p in stack.backbone.parameters()}
    depth_of.update({id(p): 0 for module in stack.embeddings for p in module.parameters()})
    for index, layer in enumerate(stack.layers):
        depth_of.update({id(p): index + 1 for p in layer.parameters()})
    return {name: depth_of.get(id(p), top + 1) for name, p in model.named_parameters()}, top


def encoder_layers(model: nn.Module) -> nn.ModuleList | None:
    """The transformer blocks of a BERT-family classifier (attention heads and FFN addressable); None otherwise."""
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    return layers if layers is not None and hasattr(layers[0], "attention") else None
