"""`QuantizationAwareTraining`: int8 fake quantization from a configured epoch, int8 export at the end.

Lightning 2.x has no QAT callback. From `start_epoch` on, every encoder Linear / GPT-2 Conv1D sees
int8 fake-quantized weights (per channel) and inputs (per batch, as the x86 dynamic kernel), so the
model learns to live with int8 rounding; validation runs quantized too. Fake-quant scales are
recomputed from the (DDP-synchronised) weights every step, so they are identical on every rank.
At the end the hooks are removed, checkpoints stay plain fp32, and the weights (the best checkpoint
when it was saved during QAT, else the final ones) are converted to a real int8 model saved as
`<run_dir>/compression/qat_int8.safetensors`, the same format as `make quantize`.

    callbacks.qat: {_target_: src.callbacks.qat.QuantizationAwareTraining, start_epoch: 1}
"""

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from src.callbacks.magnitude_pruning import MagnitudePruning
from src.compression.quantization import (
    attach_fake_quant,
    detach_fake_quant,
    drop_fake_quant_keys,
    keep_fake_quant_last,
)
from src.compression.sparsity import fold_masks, make_permanent
from src.compression.structure import normalize_record, remove_units
from src.compression.variants import export_int8
from src.errors import ConfigError
from src.modules.anatomy import HEAD_NAMES
from src.rundir import load_checkpoint
from src.validation import require

log = logging.getLogger(__name__)


class QuantizationAwareTraining(Callback):
    """Fake-quantizes linear layers from `start_epoch`; writes the int8 model when training ends."""

    def __init__(self, run_dir: Path, start_epoch: int = 0, exclude: list[str] | None = None,
                 quantize_embeddings: bool = True, filename: str = "qat_int8.safetensors") -> None:
        require(start_epoch >= 0, "callbacks.qat.start_epoch", "must be >= 0")
        self.run_dir = Path(run_dir)
        self.start_epoch = start_epoch
        self.exclude = tuple(exclude) if exclude is not None else HEAD_NAMES
        self.quantize_embeddings = quantize_embeddings
        self.filename = filename
        self.active = False
        self.layers: list[str] = []
        self.export_path: Path | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        order = [type(c) for c in trainer.callbacks]
        if MagnitudePruning in order and order.index(MagnitudePruning) > order.index(type(self)):
            raise ConfigError("List callbacks.pruning before callbacks.qat: pruning must be made permanent "
                              "before QAT converts the model to int8.")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active and trainer.current_epoch >= self.start_epoch:
            self.layers = attach_fake_quant(pl_module.model, self.exclude)
            self.active = True
            log.info("QAT: int8 fake quantization on %d layers from epoch %d.", len(self.layers),
                     trainer.current_epoch)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.active:
            keep_fake_quant_last(pl_module.model)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Checkpoints hold plain fp32 weights; `qat.active` says whether they were trained quantized."""
        checkpoint["state_dict"] = drop_fake_quant_keys(fold_masks(checkpoint["state_dict"]))
        checkpoint.setdefault("compression", {})["qat"] = {"active": self.active, "layers": self.layers}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active:
            log.warning("QAT never started (training ended before epoch %d); no int8 model written.",
                        self.start_epoch)
            return
        self._record_scales(trainer, pl_module)
        detach_fake_quant(pl_module.model)
        make_permanent(pl_module.model)
        self.active = False
        source, units = self._load_best_qat_checkpoint(trainer, pl_module)
        if trainer.is_global_zero:
            model = copy.deepcopy(pl_module.model)
            remove_units(model, normalize_record(units))
            self.export_path = export_int8(model, dict(pl_module.hparams), self.run_dir / "compression" /
                                           self.filename, "qat", units, source, self.exclude,
                                           self.quantize_embeddings)
            log.info("QAT: int8 model written to %s", self.export_path)

    def _record_scales(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write this rank's digest of the weight quantization scales: equal digests = identical qparams."""
        digest = hashlib.sha256()
        for name in self.layers:
            digest.update(pl_module.model.get_submodule(name).weight_fake_quant.scale.detach().cpu().numpy().tobytes())
        out = self.run_dir / "compression" / f"qat-rank{trainer.global_rank}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"layers": self.layers, "scale_sha256": digest.hexdigest()}, indent=2))

    @staticmethod
    def _load_best_qat_checkpoint(trainer: L.Trainer,
                                  pl_module: L.LightningModule) -> tuple[str | None, dict[str, Any]]:
        """Load the best checkpoint if it was trained with fake quantization; else keep the final weights."""
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if best and Path(best).is_file():
            checkpoint = load_checkpoint(best, pl_module.device)
            compression = checkpoint.get("compression", {})
            if compression.get("qat", {}).get("active"):
                pl_module.load_state_dict(checkpoint["state_dict"])
                return best, compression.get("units", {})
        callbacks = [c for c in trainer.callbacks if isinstance(c, MagnitudePruning)]
        return None, callbacks[0].unit_record(pl_module.model) if callbacks else {}
