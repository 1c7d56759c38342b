"""Gradual unfreezing: each epoch unfreezes one more layer top-down; frozen layers stay bit-identical."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from src.builders import build_callbacks
from src.callbacks.gradual_unfreezing import GradualUnfreezing
from src.errors import ConfigError
from tests.training_helpers import build_module, quick_fit

PARTS = {"embeddings": "bert.embeddings.", "layer0": "bert.encoder.layer.0.",
         "layer1": "bert.encoder.layer.1.", "pooler": "bert.pooler.", "head": "classifier."}


def snapshot(module: L.LightningModule) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.model.named_parameters()}


def changed_parts(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {part for part, prefix in PARTS.items()
            if any(not torch.equal(before[n], after[n]) for n in before if n.startswith(prefix))}


class EpochSnapshots(Callback):
    def __init__(self) -> None:
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.snapshots.append(snapshot(pl_module))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.snapshots.append(snapshot(pl_module))


def test_layers_unfreeze_top_down_one_per_epoch(make_cfg, tmp_path) -> None:
    cfg = make_cfg("data.limit_train=64", "data.max_length=32", "optimizer=sgd", "model.optimizer.lr=0.5")
    spec = {"_target_": "src.callbacks.gradual_unfreezing.GradualUnfreezing", "epochs_per_stage": 1}
    (unfreezing,) = build_callbacks({"gradual_unfreezing": spec}, run_dir=tmp_path)
    probe = EpochSnapshots()
    quick_fit(cfg, callbacks=[unfreezing, probe], max_steps=-1, max_epochs=3, limit_train_batches=2)
    per_epoch = [changed_parts(a, b) for a, b in zip(probe.snapshots, probe.snapshots[1:], strict=False)]
    top = {"head", "pooler"}
    assert per_epoch == [top, top | {"layer1"}, top | {"layer1", "layer0"}]  # embeddings: stage 3


def test_refuses_a_model_that_is_already_partly_frozen(make_cfg) -> None:
    cfg = make_cfg("model.finetune.mode=frozen", "data.limit_train=64")
    with pytest.raises(ConfigError, match="model.finetune.mode=full"):
        quick_fit(cfg, callbacks=[GradualUnfreezing()])


def test_bad_stage_length_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="epochs_per_stage"):
        GradualUnfreezing(epochs_per_stage=0)


def test_ddp_without_unused_parameter_detection_is_refused(make_cfg) -> None:
    module = build_module(make_cfg())
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    with pytest.raises(ConfigError, match="ddp_find_unused_parameters_true"):
        GradualUnfreezing().setup(trainer, module, "fit")
    allowed = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true",
                        logger=False)
    GradualUnfreezing().setup(allowed, module, "fit")
