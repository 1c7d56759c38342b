"""What a compressed model costs and what it is worth: size on disk, non-zero parameters, CPU latency,
throughput, and test predictions (accuracy, macro F1, agreement with the fp32 model)."""

import io
import statistics
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside a state-dict value (quantized Linear layers store (weight, bias) tuples)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


def size_on_disk_mb(model: nn.Module) -> float:
    """Bytes of `torch.save(model.state_dict())`, in MB (10^6): the same measure for fp32 and int8."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def nonzero_parameters(model: nn.Module) -> int:
    """Non-zero weights (float or quantized; integer index buffers such as position ids excluded)."""
    count = 0
    for value in model.state_dict().values():
        for tensor in _tensors(value):
            if tensor.is_quantized:
                count += int((tensor.dequantize() != 0).sum())
            elif tensor.is_floating_point():
                count += int((tensor != 0).sum())
    return count


@torch.inference_mode()
def latency_ms(model: nn.Module, batch_size: int, seq_len: int, vocab_size: int, repeats: int = 10,
               warmup: int = 2, seed: int = 0) -> dict[str, float]:
    """p50 / p95 wall-clock milliseconds of one forward pass on random full-length inputs, and samples/s."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {"input_ids": torch.randint(1, vocab_size, (batch_size, seq_len), generator=generator),
              "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long)}
    model.eval()
    for _ in range(warmup):
        model(**inputs)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(**inputs)
        times.append((time.perf_counter() - started) * 1000)
    p50 = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    return {"p50_ms": p50, "p95_ms": p95, "throughput": batch_size / (statistics.fmean(times) / 1000)}


@torch.inference_mode()
def predict(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, true label) for every example of `batches`."""
    model.eval()
    preds, labels = [], []
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        preds.append(model(**inputs).logits.argmax(-1))
        labels.append(batch["labels"])
    return torch.cat(preds).numpy(), torch.cat(labels).numpy()


def prediction_scores(preds: np.ndarray, labels: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 against the labels; agreement with the reference (fp32) predictions."""
    return {"accuracy": float(accuracy_score(labels, preds)),
            "f1_macro": float(f1_score(labels, preds, average="macro")),
            "agreement": float((preds == reference).mean())}

