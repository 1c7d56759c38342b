"""`TextClassifier`: one LightningModule for BERT-family and GPT-2-family sequence classifiers."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_info
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassROC,
)
from transformers import PreTrainedTokenizerBase

from src.compression.structure import UnitRecord, normalize_record, remove_units
from src.config import structured, to_schema
from src.instantiate import locate
from src.modules.figures import save_classification_figures
from src.modules.finetuning import apply_finetuning, finetuning_callbacks, parameter_counts
from src.modules.model_builder import build_model, load_tokenizer, model_from_config_dict
from src.modules.optimizers import build_optimizer
from src.modules.regularization import penalised_parameters, penalty
from src.modules.schedulers import build_scheduler
from src.rundir import load_checkpoint
from src.schemas import ModelConfig


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Accuracy, macro precision/recall/F1, per-class F1 and ROC-AUC (synced across DDP ranks)."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
            "f1_per_class": MulticlassF1Score(num_classes, average=None),
            "auroc": MulticlassAUROC(num_classes),
        },
        prefix=prefix,
    )


class TextClassifier(L.LightningModule):
    """Wraps `AutoModelForSequenceClassification`; optimizer and schedule are the classes the config names."""

    flops_per_batch = None  # read by Lightning's ThroughputMonitor: FLOPs are not counted, so no FLOPs metrics

    def __init__(self, model_cfg: dict[str, Any], label_names: list[str],
                 hf_config: dict[str, Any] | None = None, class_weights: list[float] | None = None,
                 tokenizer: PreTrainedTokenizerBase | None = None) -> None:
        super().__init__()
        # the plain dict: checkpoints stay loadable when the schema grows; the run's tokenizer is no hyper-parameter
        self.save_hyperparameters(ignore=["tokenizer"])
        self.cfg: ModelConfig = to_schema(ModelConfig, model_cfg)
        self.label_names = list(label_names)
        num_labels = len(self.label_names)
        if hf_config is None:
            self.model = build_model(self.cfg, self.label_names, tokenizer or load_tokenizer(self.cfg))
        else:
            self.model = model_from_config_dict(hf_config)
        self.model = apply_finetuning(self.model, self.cfg.finetune,
                                      self.cfg.tokenizer or self.cfg.name_or_path)
        self.parameter_counts = parameter_counts(self.model)
        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=self.cfg.label_smoothing)
        self.train_acc = MulticlassAccuracy(num_labels, average="micro")
        self.val_metrics = classification_metrics(num_labels, "val/")
        self.test_metrics = classification_metrics(num_labels, "test/")
        self.test_confusion = MulticlassConfusionMatrix(num_labels)
        self.test_roc = MulticlassROC(num_labels, thresholds=200)
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.pruned_units: UnitRecord = normalize_record(None)  # set by from_checkpoint
        self._compiled = False

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str = "cpu", remove_pruned: bool = True
                        ) -> "TextClassifier":
        """Load a checkpoint without touching the Hub: the architecture comes from the saved config.
        `remove_pruned=False` keeps pruned heads / neurons in place as zeros (the full-size architecture)."""
        checkpoint = load_checkpoint(path, map_location, keys=("state_dict", "hyper_parameters", "hf_config"))
        hparams = dict(checkpoint["hyper_parameters"], hf_config=checkpoint["hf_config"])
        # checkpoints written before a model key existed get that key's schema default
        saved = OmegaConf.merge(structured(ModelConfig), hparams["model_cfg"])
        hparams["model_cfg"] = OmegaConf.to_container(saved, resolve=True)
        trained = locate(saved._target_, "model._target_")  # the subclass it was trained as (mean pooling, ...)
        module = (trained if isinstance(trained, type) and issubclass(trained, cls) else cls)(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
        module.pruned_units = normalize_record(checkpoint.get("compression", {}).get("units"))
        if remove_pruned:  # heads / FFN neurons masked by structured pruning removed for real: smaller, faster
            remove_units(module.model, module.pruned_units)
        return module

    @property
    def lr(self) -> float:
        """model.optimizer.lr, what configure_optimizers builds with: Lightning's LearningRateFinder sets it."""
        return self.cfg.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the learning rate; set during a fit (the finder's suggestion), the optimizer and its schedule are
        rebuilt from it, parameter groups included (Lightning alone would only overwrite the groups' current lr,
        which the schedule resets from its base learning rates at the next step)."""
        self.cfg.optimizer.lr = value
        if self._trainer is not None and self._trainer.optimizers:
            self._trainer.strategy.setup_optimizers(self._trainer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hf_config"] = self.model.config.to_dict()

    def configure_model(self) -> None:
        """`model.compile`: torch.compile the transformer in place (state-dict keys unchanged), dynamic shapes so
        batches of another padded length reuse the graph; Lightning calls this once per fit / validate / test."""
        if self.cfg.compile and not self._compiled:
            self.model.compile(dynamic=True)
            self._compiled = True

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits in float32 whatever the precision (bf16 / fp16 stay inside): losses, metrics and predictions
        files are computed in float32."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**inputs).logits.float()

    def objective(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training objective's data term: cross-entropy with class weights and label smoothing."""
        return self.loss_fn(logits, labels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch)
        objective = self.objective(logits, batch["labels"])
        if self.cfg.penalty.weight > 0:
            params = penalised_parameters(self.model, list(self.cfg.penalty.params))
            term = penalty(params, self.cfg.penalty.kind)
            self.log(f"train/{self.cfg.penalty.kind}_penalty", term)
            objective = objective + self.cfg.penalty.weight * term
        self.train_acc(logits, batch["labels"])
        # train/loss is the plain NLL, comparable with val/test loss and across arms; the optimised
        # quantity (weights, smoothing, penalties) is train/objective.
        self.log("train/loss", F.cross_entropy(logits.detach(), batch["labels"]), prog_bar=True)
        self.log("train/objective", objective)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return objective

    def on_train_start(self) -> None:
        """Log and print trainable / total parameter counts (after callbacks froze what they freeze)."""
        self.parameter_counts = parameter_counts(self.model)
        for logger in self.loggers:
            logger.log_metrics({f"params/{k}": v for k, v in self.parameter_counts.items()}, step=0)
        rank_zero_info("Parameters: {trainable:,} trainable of {total:,} ({trainable_pct:.2f}%)".format(
            **self.parameter_counts))

    def configure_callbacks(self) -> list[Callback]:
        return finetuning_callbacks(self.model)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        self.log("val/loss", F.cross_entropy(logits, batch["labels"]), sync_dist=True)
        self.val_metrics.update(logits.softmax(-1), batch["labels"])
        if self.trainer.state.fn == TrainerFn.VALIDATING:  # the final validation of the chosen checkpoint
            self._eval_outputs.append((logits.softmax(-1).detach().cpu(), batch["labels"].detach().cpu()))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self._flatten(self.val_metrics.compute()), prog_bar=False)
        self.val_metrics.reset()
        if self.trainer.state.fn == TrainerFn.VALIDATING:
            self.validation_predictions = self._gather_outputs()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        probs = logits.softmax(-1)
        self.log("test/loss", F.cross_entropy(logits, batch["labels"]), sync_dist=True)
        self.test_metrics.update(probs, batch["labels"])
        self.test_confusion.update(probs, batch["labels"])
        self.test_roc.update(probs, batch["labels"])
        self._eval_outputs.append((probs.detach().cpu(), batch["labels"].detach().cpu()))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._flatten(self.test_metrics.compute()))
        figures = save_classification_figures(
            self.test_confusion, self.test_roc, self.label_names, Path(self.trainer.default_root_dir) / "figures"
        )
        self.test_metrics.reset()
        self.test_confusion.reset()
        self.test_roc.reset()
        self.test_predictions = self._gather_outputs()
        self.test_figures = figures

    def _gather_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All ranks' validation or test probabilities and labels, for predictions files and model fusion."""
        probs = torch.cat([p for p, _ in self._eval_outputs])
        labels = torch.cat([y for _, y in self._eval_outputs])
        self._eval_outputs.clear()
        if self.trainer.world_size > 1:
            probs = self.all_gather(probs).flatten(0, 1).cpu()
            labels = self.all_gather(labels).flatten(0, 1).cpu()
        return probs, labels

    def _flatten(self, metrics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Split per-class tensors into one scalar per class name (e.g. test/f1_per_class/positive)."""
        flat = {}
        for name, value in metrics.items():
            if value.ndim == 0:
                flat[name] = value
            else:
                flat.update({f"{name}/{label}": v for label, v in zip(self.label_names, value, strict=True)})
        return flat

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.cfg.optimizer)
        scheduler = build_scheduler(optimizer, self.cfg.scheduler, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
