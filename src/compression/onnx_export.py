"""ONNX export of a sequence classifier with dynamic batch and sequence axes, its parity check against PyTorch,
and ONNX Runtime dynamic int8 (`onnxruntime.quantization.quantize_dynamic`) for CPU serving.

torch.onnx's TorchScript exporter (`dynamo=False`) is used: the dynamo exporter needs onnxscript, which is not a
dependency, and optimum's exporter pins transformers versions. int8: MatMul weights are int8 per output channel
(symmetric, scale max|w| / 127), activations uint8 per tensor with the range of each batch (DynamicQuantizeLinear).

QAT (src/callbacks/qat.py) learns no scale parameters: its weight scales are per-channel max|w| / 127.5 of the
final weights and its input ranges are per batch, both recomputed from what they see. Its result is weights
that tolerate int8 rounding, and those carry into the ONNX int8 model unchanged. What differs from the int8
grid QAT trained against: ORT's weight grid is [-127, 127] (torch's [-128, 127]: scales 0.4 % apart) and ORT
quantizes activations to 8 bits where torch's x86 kernel uses 7 (reduce_range), so ORT's rounding is finer.
"""

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from src.errors import LabError

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
REPORT_FILE = "onnx.json"
PARITY_TOLERANCE = 1e-4
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Parity inputs: different batch size and lengths than the traced sample, with padding, so dynamic axes are tested.
TRACE_TEXTS = ("A fine film.", "Dull, slow and far too long for what it has to say.")
CHECK_TEXTS = ("One of the best films I have seen this year: sharp writing, a cast at its best and a score "
               "that stays with you.", "Awful.", "It was fine, I suppose, though the ending dragged.",
               "<br />Not for me!!! The plot made no sense and the jokes fell flat.")


class ParityError(LabError):
    """The exported ONNX model does not reproduce the PyTorch logits."""


class LogitsOnly(nn.Module):
    """A classifier as a function of token tensors to logits (no cache, no output dict): what ONNX traces."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **extra).logits


def input_names(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The model inputs the tokenizer produces, in `LogitsOnly.forward` order."""
    return [name for name in INPUTS if name in tokenizer.model_input_names]


def tokenized(tokenizer: PreTrainedTokenizerBase, texts: tuple[str, ...], names: list[str]) -> dict[str, np.ndarray]:
    """Padded int64 arrays of `names` for `texts`."""
    batch = tokenizer(list(texts), padding=True, return_tensors="np")
    return {name: batch[name].astype(np.int64) for name in names}


def export_onnx(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> Path:
    """Write `model` (CPU, eval) as ONNX with dynamic batch and sequence axes on every input."""
    names = input_names(tokenizer)
    sample = tokenized(tokenizer, TRACE_TEXTS, names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"logits": {0: "batch"}}
    wrapper = LogitsOnly(model.cpu()).eval()
    with torch.no_grad():
        torch.onnx.export(wrapper, tuple(torch.from_numpy(sample[n]) for n in names), str(path), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return path


def session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with every graph optimization (`threads` intra-op threads when given)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(runner: ort.InferenceSession, batch: dict[str, Any]) -> np.ndarray:
    """Logits of one padded batch (the inputs the graph takes, as int64 arrays; token_type_ids default to 0
    as in the PyTorch model)."""
    ids = np.asarray(batch["input_ids"], dtype=np.int64)
    feed = {i.name: np.asarray(batch[i.name], dtype=np.int64) if i.name in batch else np.zeros_like(ids)
            for i in runner.get_inputs()}
    return runner.run(["logits"], feed)[0]


class OnnxClassifier(nn.Module):
    """An ONNX Runtime session behind the transformers call `model(**batch).logits`, so the compression report
    scores and times it with the same code as the PyTorch variants."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.runner = session(self.path, threads)

    def forward(self, **batch: torch.Tensor) -> SequenceClassifierOutput:
        logits = onnx_logits(self.runner, {k: v.numpy() for k, v in batch.items()})
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))

    def size_mb(self) -> float:
        """The ONNX file's size in MB (10^6 bytes)."""
        return self.path.stat().st_size / 1e6

    def nonzero_parameters(self) -> int:
        """Non-zero weight values: float initializers and int8 quantized weights (scales, zero points and
        integer shape constants excluded)."""
        count = 0
        for tensor in onnx.load(str(self.path)).graph.initializer:
            values = numpy_helper.to_array(tensor)
            weight = values.dtype.kind == "f" or (values.dtype.kind in "iu" and tensor.name.endswith("_quantized"))
            if weight and not tensor.name.endswith(("_scale", "_zero_point")):
                count += int(np.count_nonzero(values))
        return count


def torch_logits(model: PreTrainedModel, batch: dict[str, np.ndarray]) -> np.ndarray:
    """PyTorch logits of the same batch."""
    with torch.inference_mode():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()


def compare(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> dict[str, float]:
    """Largest absolute logit difference and argmax agreement of the ONNX model against PyTorch on CHECK_TEXTS."""
    batch = tokenized(tokenizer, CHECK_TEXTS, input_names(tokenizer))
    reference, logits = torch_logits(model, batch), onnx_logits(session(path), batch)
    return {"max_abs_diff": float(np.abs(reference - logits).max()),
            "agreement": float((reference.argmax(-1) == logits.argmax(-1)).mean())}


def quantize_onnx_int8(path: Path, out: Path) -> Path:
    """ONNX Runtime dynamic int8 of an fp32 ONNX model: int8 per-channel weights, per-batch uint8 activations."""
    logging.disable(logging.INFO)  # the quantizer logs one root INFO line per tensor it leaves in float
    try:
        quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.disable(logging.NOTSET)
    return out


def write_onnx(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path) -> dict[str, Any]:
    """model.onnx (parity-checked against PyTorch), model.int8.onnx and onnx.json with both checks."""
    fp32 = export_onnx(model, tokenizer, directory / ONNX_FILE)
    parity = compare(model, tokenizer, fp32)
    if parity["max_abs_diff"] > PARITY_TOLERANCE:
        raise ParityError(f"The ONNX model's logits differ from PyTorch by {parity['max_abs_diff']:.2e} "
                          f"(> {PARITY_TOLERANCE:g}); nothing was exported. Please report this model type.")
    int8 = quantize_onnx_int8(fp32, directory / INT8_FILE)
    report = {"opset": OPSET, "tolerance": PARITY_TOLERANCE, "check_texts": len(CHECK_TEXTS),
              "fp32": {"file": fp32.name, **parity}, "int8": {"file": int8.name, **compare(model, tokenizer, int8)}}
    (directory / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report
