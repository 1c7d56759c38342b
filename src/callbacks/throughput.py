"""Samples/s and tokens/s of a run: Lightning's ThroughputMonitor, told how to count text batches."""

import torch
from lightning.pytorch.callbacks import ThroughputMonitor

Batch = dict[str, torch.Tensor]


def batch_size(batch: Batch) -> int:
    """Rows in a batch."""
    return len(batch["input_ids"])


def token_count(batch: Batch) -> int:
    """Real tokens in a batch: the attention mask's sum, so padding is not counted."""
    return int(batch["attention_mask"].sum())


class TokenThroughputMonitor(ThroughputMonitor):
    """Logs <stage>/device/samples_per_sec and <stage>/device/items_per_sec (tokens/s, padding excluded), averaged
    over the last `window_size` batches, with the cumulated samples and tokens (<stage>/samples, <stage>/lengths)."""

    def __init__(self, window_size: int = 100) -> None:
        super().__init__(batch_size_fn=batch_size, length_fn=token_count, window_size=window_size)
