"""`MagnitudePruning`: gradual magnitude pruning of transformer classifiers, safe for fine-tuning.

Lightning's `ModelPruning` prunes embeddings and rewinds weights (lottery ticket) by default; this
callback prunes only the encoder's Linear / Conv1D weights (LayerNorm never; embeddings and the
classification head only when configured), follows a cubic schedule (Zhu & Gupta, 2017), keeps the
masks identical on every DDP rank, folds them into every saved checkpoint and makes them permanent at
the end of training, so checkpoints load into a plain model.

    callbacks.pruning: {_target_: src.callbacks.magnitude_pruning.MagnitudePruning, method: unstructured, target: 0.5,
                        scope: global, start: 0, end: 200}
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.nn.utils import prune

from src.compression.sparsity import cubic_sparsity, fold_masks, make_permanent, prunable_weights, sparsity
from src.compression.structure import (
    ffn_scores,
    head_scores,
    lowest,
    mask_ffn,
    mask_heads,
    masked_units,
    require_encoder_layers,
)
from src.validation import require, require_choice

METHODS = ("unstructured", "heads", "ffn")


class MagnitudePruning(Callback):
    """Prunes to `target` (weight sparsity, or share of heads / FFN neurons per layer), start to end."""

    def __init__(self, run_dir: Path, method: str = "unstructured", target: float = 0.5,
                 scope: str = "global", schedule: str = "cubic", start: int = 0, end: int | None = None,
                 unit: str = "step",
                 frequency: int = 10, include_embeddings: bool = False, include_classifier: bool = False,
                 exclude: list[str] | None = None) -> None:
        require_choice("callbacks.pruning.method", method, METHODS)
        require_choice("callbacks.pruning.scope", scope, ["global", "layer"])
        require_choice("callbacks.pruning.schedule", schedule, ["cubic", "one_shot"])
        require_choice("callbacks.pruning.unit", unit, ["step", "epoch"])
        require(0.0 < target < 1.0, "callbacks.pruning.target", "must be in (0, 1)")
        require(frequency > 0, "callbacks.pruning.frequency", "must be positive")
        require(end is None or end >= start >= 0, "callbacks.pruning.end", "needs 0 <= start <= end")
        self.run_dir = Path(run_dir)
        self.method, self.target, self.scope, self.schedule = method, target, scope, schedule
        self.start, self.end, self.unit, self.frequency = start, end, unit, frequency
        self.target_kwargs = dict(include_embeddings=include_embeddings,
                                  include_classifier=include_classifier, exclude=tuple(exclude or ()))
        self.level = 0.0  # the sparsity level applied so far
        self._steps: tuple[int, int] = (0, 0)
        self._weights: list[tuple[str, nn.Module]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        model = pl_module.model
        if self.method != "unstructured":
            require_encoder_layers(model)  # fail before training on a model without BERT-style heads
        self._weights = prunable_weights(model, **self.target_kwargs)
        require(bool(self._weights), "callbacks.pruning.exclude", "leaves no layer to prune")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = int(trainer.estimated_stepping_batches)
        per_epoch = max(1, int(trainer.num_training_batches) // trainer.accumulate_grad_batches)
        scale = per_epoch if self.unit == "epoch" else 1
        end = total if self.end is None else self.end * scale
        self._steps = (self.start * scale, min(end, total))

    def level_at(self, step: int) -> float:
        """The scheduled sparsity level after `step` optimizer steps."""
        start, end = self._steps
        if self.schedule == "one_shot":
            return self.target if step >= start else 0.0
        return cubic_sparsity(step, start, end, self.target)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        step = trainer.global_step
        start, end = self._steps
        if step < start or step > end or (step - start) % self.frequency and step != end:
            return
        if self.apply(pl_module.model, self.level_at(step)):
            pl_module.log("prune/sparsity", sparsity(self._weights)[0], rank_zero_only=True)
            pl_module.log("prune/level", self.level, rank_zero_only=True)

    def apply(self, model: nn.Module, level: float) -> bool:
        """Prune up to `level` (never back); then make the masks identical on every rank. True if pruned."""
        if level <= self.level + 1e-9:
            return False
        if self.method == "unstructured":
            self._prune_unstructured(level)
        else:
            self._prune_units(model, level)
        self.level = level
        broadcast_masks(model)
        return True

    def _prune_unstructured(self, level: float) -> None:
        if self.scope == "global":
            params = [(module, "weight") for _, module in self._weights]
            total = sum(module.weight.numel() for module, _ in params)
            amount = self._new_zeros(params, level, total)
            prune.global_unstructured(params, prune.L1Unstructured, amount=amount)
            return
        for _, module in self._weights:
            amount = self._new_zeros([(module, "weight")], level, module.weight.numel())
            if amount > 0:
                prune.l1_unstructured(module, "weight", amount=amount)

    @staticmethod
    def _new_zeros(params: list[tuple[nn.Module, str]], level: float, total: int) -> int:
        """How many more weights to mask to reach `level` (prune counts amounts among unmasked ones)."""
        masked = sum(int((getattr(m, "weight_mask", torch.ones(1)) == 0).sum()) for m, _ in params)
        return max(0, round(level * total) - masked)

    def _prune_units(self, model: nn.Module, level: float) -> None:
        score, mask = (head_scores, mask_heads) if self.method == "heads" else (ffn_scores, mask_ffn)
        for layer in require_encoder_layers(model):
            scores = score(layer)
            count = min(round(level * len(scores)), len(scores) - 1)  # a layer keeps at least one unit
            if count > 0:
                mask(layer, lowest(scores, count))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Reach the target even if training stopped early, fold the masks, log and record sparsity."""
        model = pl_module.model
        self.apply(model, self.target)
        digest = mask_digest(model)
        record = self.unit_record(model)
        make_permanent(model)
        global_sparsity, per_layer = sparsity(self._weights)
        metrics = {"prune/final_sparsity": global_sparsity,
                   **{f"prune/sparsity/{name}": value for name, value in per_layer.items()}}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        out = self.run_dir / "compression" / f"pruning-rank{trainer.global_rank}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"method": self.method, "target": self.target, "scope": self.scope,
                                   "global_sparsity": global_sparsity, "per_layer": per_layer,
                                   "units": record, "mask_sha256": digest}, indent=2))

    def unit_record(self, model: nn.Module) -> dict[str, Any]:
        """Which heads / FFN neurons are masked (what a loader removes for real); empty for unstructured."""
        return {} if self.method == "unstructured" else {self.method: masked_units(model, self.method)}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Checkpoints hold plain pruned weights (+ the unit record), never `_orig` / `_mask` pairs."""
        checkpoint["state_dict"] = fold_masks(checkpoint["state_dict"])
        checkpoint.setdefault("compression", {})["units"] = self.unit_record(pl_module.model)


def broadcast_masks(model: nn.Module) -> None:
    """Copy rank 0's pruning masks to every rank (the weights agree under DDP; this makes ties agree too)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for name, buffer in model.named_buffers():
            if name.endswith("_mask"):
                dist.broadcast(buffer, src=0)


def mask_digest(model: nn.Module) -> str:
    """SHA-256 of every pruning mask, in name order: equal digests across ranks = identical masks."""
    digest = hashlib.sha256()
    for name, buffer in sorted(model.named_buffers()):
        if name.endswith("_mask"):
            digest.update(name.encode())
            digest.update(buffer.detach().to(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()
