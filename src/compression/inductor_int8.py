"""Static int8 for x86 CPUs: PT2E quantization (torchao's `X86InductorQuantizer`) compiled by Inductor.

Why a third int8 path: torch.ao dynamic int8 (`ptq_int8`) and ONNX Runtime dynamic int8 (`ort_int8`) quantize
the Linear inputs batch by batch and leave every other op (attention, softmax, LayerNorm, GELU) in unfused fp32
kernels; on this lab's 2-core VNNI/AMX machine neither passes 1.5x at batch 32. Static int8, its activation
ranges calibrated on validation batches, lowered by Inductor to oneDNN int8 GEMMs (VNNI / AMX) with the
elementwise ops fused, is the x86 CPU int8 path PyTorch documents. With `bf16=True` the ops left in float run
in bfloat16 under `torch.autocast` (AMX on CPUs that have it): PyTorch's "int8-mixed-bf16" recipe.

The graph is exported for one sequence length (the run's `max_length`; shorter inputs are right-padded to it,
which changes no logit since padded positions are masked) with a dynamic batch dimension. It is rebuilt in
memory from the fp32 checkpoint (calibration and compilation take tens of seconds); nothing is written, so no
pickle is ever read. Inductor needs a C++ compiler at run time.
"""

import copy
import itertools
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch._inductor import config as inductor_config
from torch.fx import GraphModule
from torchao.quantization.pt2e import allow_exported_model_train_eval
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
    X86InductorQuantizer,
    get_default_x86_inductor_quantization_config,
)
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from src.compression.onnx_export import LogitsOnly
from src.errors import DataError

MAX_BATCH = 1024  # upper bound of the exported graph's dynamic batch dimension
CALIBRATION_BATCHES = 8  # validation batches that set the activation ranges


class Int8RowEmbedding(nn.Module):
    """An embedding table stored as int8 rows, one scale per row (max|row| / 127), dequantized after the lookup.
    Written here because X86InductorQuantizer quantizes no embedding, and MiniLM's token table is half its weights."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        weight = embedding.weight.detach()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny) / 127
        self.register_buffer("weight_int8", torch.round(weight / scale).to(torch.int8))
        self.register_buffer("scale", scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight_int8[ids].float() * self.scale[ids]


def drop_unreferenced(graph: GraphModule) -> GraphModule:
    """Delete the parameters and buffers no get_attr node of an exported graph reads: export keeps the fp32
    originals of the int8 weights that convert_pt2e folded into new constants, which would double the size."""
    graph.graph.eliminate_dead_code()
    graph.recompile()
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    tensors = [name for name, _ in (*graph.named_parameters(), *graph.named_buffers())]
    for name in tensors:
        if name not in used:
            owner, _, leaf = name.rpartition(".")
            delattr(graph.get_submodule(owner), leaf)
    graph.delete_all_unused_submodules()
    return graph


def padded(batch: dict[str, torch.Tensor], seq_len: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) right-padded to `seq_len`; a longer input or non-zero token types are refused."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if ids.shape[1] > seq_len:
        raise DataError(f"Inputs of {ids.shape[1]} tokens exceed the {seq_len} this int8 graph was built for; "
                         f"truncate to {seq_len} tokens (data.max_length).")
    if "token_type_ids" in batch and bool(batch["token_type_ids"].any()):
        raise DataError("The Inductor int8 graph takes single-segment inputs (token_type_ids all 0); serve "
                        "sentence pairs with BACKEND=torch or onnx.")
    extra = seq_len - ids.shape[1]
    return (nn.functional.pad(ids, (0, extra), value=pad_id), nn.functional.pad(mask, (0, extra), value=0))


def validation_batches(datamodule: Any, count: int = CALIBRATION_BATCHES) -> list[dict[str, torch.Tensor]]:
    """The first `count` batches of a set-up datamodule's validation loader, labels dropped: calibration data."""
    return [{k: v for k, v in batch.items() if k != "labels"}
            for batch in itertools.islice(datamodule.val_dataloader(), count)]


@torch.no_grad()
def calibrated_int8(model: PreTrainedModel, calibration: Iterable[dict[str, torch.Tensor]],
                    seq_len: int) -> GraphModule:
    """The int8 graph of a copy of `model`: token embeddings as int8 rows, exported with a dynamic batch axis,
    Linear activation ranges observed on the `calibration` batches (validation data: scales are a choice too)."""
    pad_id = model.config.pad_token_id or 0
    batches = [padded(batch, seq_len, pad_id) for batch in calibration]
    if not batches:
        raise DataError("Static int8 needs at least one calibration batch: the validation split is empty.")
    model = copy.deepcopy(model).cpu().eval()
    model.set_input_embeddings(Int8RowEmbedding(model.get_input_embeddings()))
    batch_dim = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    exported = torch.export.export(LogitsOnly(model), batches[0],
                                   dynamic_shapes=({0: batch_dim}, {0: batch_dim})).module()
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    for inputs in batches:
        prepared(*inputs)
    return allow_exported_model_train_eval(drop_unreferenced(convert_pt2e(prepared)))  # .eval() is a no-op


class InductorClassifier(nn.Module):
    """A compiled int8 graph behind the transformers call `model(**batch).logits`, so the compression report
    scores and times it with the same code as the other variants."""

    def __init__(self, quantized: GraphModule, seq_len: int, pad_id: int, bf16: bool = False) -> None:
        super().__init__()
        self.quantized, self.seq_len, self.pad_id, self.bf16 = quantized, seq_len, pad_id, bf16
        # A plain attribute list keeps the compiled wrapper out of the module tree: state_dict() holds each weight once.
        self._compiled = [torch.compile(quantized)]

    def forward(self, **batch: torch.Tensor) -> SequenceClassifierOutput:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with autocast, inductor_config.patch(freezing=True):  # freezing: weights prepacked for oneDNN int8 GEMMs
            logits = self._compiled[0](*padded(batch, self.seq_len, self.pad_id))
        return SequenceClassifierOutput(logits=logits.float())

    def nonzero_parameters(self) -> int:
        """Non-zero weight values: the graph's float and int8 tensors (quantization scales, zero points excluded)."""
        return sum(int(torch.count_nonzero(tensor)) for name, tensor in self.quantized.state_dict().items()
                   if (tensor.is_floating_point() or tensor.dtype == torch.int8)
                   and not name.rsplit(".", 1)[-1].startswith(("_scale", "_zero_point", "scale")))
