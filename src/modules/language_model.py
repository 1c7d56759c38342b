"""The language model of domain-adaptive pre-training (src/pretraining.py): the experiment's backbone with a masked-LM
(BERT family) or causal-LM (GPT-2 family) head, its LightningModule and its in-domain training texts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from src.errors import ConfigError
from src.modules.model_builder import build_hf_config
from src.modules.optimizers import build_optimizer
from src.modules.schedulers import build_scheduler
from src.schemas import PRETRAIN_OBJECTIVES, OptimizerConfig, RunConfig, SchedulerConfig
from src.validation import require_choice

if TYPE_CHECKING:
    from src.datamodules.text_classification import TextClassificationDataModule


def resolve_objective(objective: str, model_type: str) -> str:
    """mlm for model types with a masked-LM head (BERT family), clm otherwise (GPT-2 family)."""
    require_choice("pretrain.objective", objective, PRETRAIN_OBJECTIVES)
    if objective != "auto":
        if objective == "mlm" and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
            raise ConfigError(f"pretrain.objective=mlm but '{model_type}' has no masked-LM head; use clm.")
        return objective
    return "mlm" if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "clm"


def build_language_model(cfg: RunConfig, tokenizer: PreTrainedTokenizerBase) -> tuple[PreTrainedModel, str]:
    """The experiment's backbone with a masked- or causal-LM head (pretrained weights or random init)."""
    config = build_hf_config(cfg.model, list(cfg.data.label_names), tokenizer)
    objective = resolve_objective(cfg.pretrain.objective, config.model_type)
    auto = AutoModelForMaskedLM if objective == "mlm" else AutoModelForCausalLM
    if cfg.model.pretrained:
        model = auto.from_pretrained(cfg.model.name_or_path, config=config)
    else:
        model = auto.from_config(config)
    return model.train(), objective


class LanguageModelPretrainer(L.LightningModule):
    """Trains a `*ForMaskedLM` / `*ForCausalLM` model on the loss the collator's labels define."""

    def __init__(self, model: PreTrainedModel, optimizer: OptimizerConfig, scheduler: SchedulerConfig) -> None:
        super().__init__()
        self.model = model
        self.optimizer_cfg, self.scheduler_cfg = optimizer, scheduler

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("pretrain/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.model, self.optimizer_cfg)
        scheduler = build_scheduler(optimizer, self.scheduler_cfg, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def in_domain_texts(datamodule: TextClassificationDataModule, max_length: int) -> Dataset:
    """The data module's cleaned train-split texts, tokenized with its tokenizer (labels dropped)."""
    datamodule.prepare_texts()
    texts, tokenizer = datamodule.cleaned["train"], datamodule.tokenizer
    return texts.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
                     batched=True, remove_columns=texts.column_names, desc="Tokenizing pre-training texts")
