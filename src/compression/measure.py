"""What a compressed model costs and what it is worth: size on disk, non-zero parameters, CPU latency and
throughput (interleaved timing with torch.utils.benchmark), the machine they were measured on, and test
predictions (accuracy, macro F1, agreement with the fp32 model)."""

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from torch.utils import benchmark

from src.compression.onnx_export import OnnxClassifier
from src.hardware import cpu_info

Inputs = dict[str, torch.Tensor]
Key = TypeVar("Key")
Rounds = list[list[float]]
# /proc/cpuinfo flags behind each reported ISA extension (VNNI: AVX-512 VNNI or the AVX (VEX) form).


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside a state-dict value (quantized Linear layers store (weight, bias) tuples)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


def size_on_disk_mb(model: nn.Module) -> float:
    """Bytes of `torch.save(model.state_dict())`, in MB (10^6): the same measure for fp32 and int8; an ONNX
    model's file size."""
    if isinstance(model, OnnxClassifier):
        return model.size_mb()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def nonzero_parameters(model: nn.Module) -> int:
    """Non-zero weights (float or quantized; integer index buffers such as position ids excluded); an ONNX or
    Inductor int8 model counts its own."""
    if hasattr(model, "nonzero_parameters"):
        return model.nonzero_parameters()
    count = 0
    for value in model.state_dict().values():
        for tensor in _tensors(value):
            if tensor.is_quantized:
                count += int((tensor.dequantize() != 0).sum())
            elif tensor.is_floating_point():
                count += int((tensor != 0).sum())
    return count


def random_inputs(batch_size: int, seq_len: int, vocab_size: int, seed: int = 0) -> Inputs:
    """Seeded random full-length token ids without padding: the worst case, identical for every variant."""
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(1, vocab_size, (batch_size, seq_len), generator=generator),
            "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long)}


@torch.inference_mode()
def forward_times_ms(model: nn.Module, inputs: Inputs, threads: int, min_run_time: float) -> list[float]:
    """Milliseconds per forward pass, one per block of `blocked_autorange` (its block-size search warms up)."""
    model.eval()
    timer = benchmark.Timer("model(**inputs)", globals={"model": model, "inputs": inputs}, num_threads=threads)
    return [1000 * t for t in timer.blocked_autorange(min_run_time=min_run_time).times]


def interleaved_times_ms(models: dict[str, nn.Module], inputs: dict[Key, Inputs], rounds: int,
                         time_fn: Callable[[nn.Module, Inputs], list[float]],
                         seed: int = 0) -> dict[str, dict[Key, Rounds]]:
    """Per model and input, the timings of each round; a round times every model in turn, in an order shuffled per
    round (seeded), so drift, and any cost of following a particular model, hits all alike."""
    times: dict[str, dict[Key, Rounds]] = {name: {key: [] for key in inputs} for name in models}
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        for key, batch in inputs.items():
            for name in rng.permutation(list(models)).tolist():
                times[name][key].append(time_fn(models[name], batch))
    return times


def quartiles(values: Sequence[float]) -> dict[str, float]:
    """Median and 25th / 75th percentiles (numpy's linear interpolation)."""
    p25, median, p75 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "p25": float(p25), "p75": float(p75)}


def round_medians(rounds: Rounds) -> list[float]:
    """The median timing of each round: one robust value per round, so every round weighs the same."""
    return [float(np.median(times)) for times in rounds]


def latency_stats(rounds: Rounds, batch_size: int) -> dict[str, float]:
    """Median and quartiles of the per-round medians (ms), and samples/s at that median."""
    stats = quartiles(round_medians(rounds))
    return {**{f"{name}_ms": value for name, value in stats.items()},
            "samples_per_s": 1000 * batch_size / stats["median"]}


def speedup_stats(reference: Rounds, rounds: Rounds) -> dict[str, float]:
    """× faster than the reference: quartiles of reference / variant per-round medians, paired by round."""
    return quartiles([ref / time for ref, time in zip(round_medians(reference), round_medians(rounds), strict=True)])


def machine_info() -> dict[str, Any]:
    """What CPU latencies depend on: CPU model, ISA extensions, torch version and kernels, threads, int8 engine."""
    return {**cpu_info(),
            "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "quantized_engine": torch.backends.quantized.engine}


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


def prediction_scores(preds: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                      prefix: str = "") -> dict[str, float]:
    """Accuracy and macro F1 against the labels; agreement with the reference (fp32) predictions."""
    return {f"{prefix}accuracy": float(accuracy_score(labels, preds)),
            f"{prefix}f1_macro": float(f1_score(labels, preds, average="macro")),
            f"{prefix}agreement": float((preds == reference).mean())}
