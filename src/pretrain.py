"""Domain-adaptive pre-training: continue masked-LM (BERT family) or causal-LM (GPT-2 family) training on
the experiment's unlabeled in-domain train texts (e.g. IMDB reviews), then save a `save_pretrained` directory.

    make pretrain EXP=imdb_minilm ARGS="pretrain.max_steps=500"
    make train EXP=imdb_minilm ARGS="model.name_or_path=<printed dir> model.pretrained=true"

Only the train split's texts are used (labels ignored; validation and test texts never). The optimizer and
schedule come from the experiment's `model.optimizer` / `model.scheduler` groups with `pretrain.lr`.
"""

import copy
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
from datasets import Dataset
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from src.cli import entry_point
from src.config import compose, to_object, to_yaml
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError
from src.modules.model_builder import build_hf_config, load_tokenizer
from src.modules.optimizers import build_optimizer
from src.modules.schedulers import build_scheduler
from src.schemas import OptimizerConfig, RunConfig, SchedulerConfig
from src.train import RUN_DIR_ENV, trainer_arguments
from src.validation import check_buildable, require_choice

log = logging.getLogger("src.pretrain")
OBJECTIVES = ("auto", "mlm", "clm")


def resolve_objective(objective: str, model_type: str) -> str:
    """mlm for model types with a masked-LM head (BERT family), clm otherwise (GPT-2 family)."""
    require_choice("pretrain.objective", objective, OBJECTIVES)
    if objective != "auto":
        if objective == "mlm" and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
            raise ConfigError(f"pretrain.objective=mlm but '{model_type}' has no masked-LM head; use clm.")
        return objective
    return "mlm" if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES else "clm"


def build_language_model(cfg: RunConfig, tokenizer: PreTrainedTokenizerBase) -> tuple[PreTrainedModel, str]:
    """The experiment's backbone with a masked- or causal-LM head (pretrained weights or random init)."""
    config = build_hf_config(cfg.model, len(cfg.data.label_names), tokenizer)
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


def in_domain_texts(cfg: DictConfig, tokenizer: PreTrainedTokenizerBase) -> Dataset:
    """The cleaned train-split texts of the experiment's data config, tokenized (labels dropped)."""
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    datamodule.prepare_texts()
    texts = datamodule.cleaned["train"]
    return texts.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=cfg.data.max_length),
                     batched=True, remove_columns=texts.column_names, desc="Tokenizing pre-training texts")


def output_dir(cfg: DictConfig) -> Path:
    if cfg.pretrain.output_dir:
        return Path(cfg.pretrain.output_dir)
    if os.environ.get(RUN_DIR_ENV):  # a DDP worker: the parent's directory
        return Path(os.environ[RUN_DIR_ENV])
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return Path("runs") / cfg.experiment / "pretrain" / stamp / "model"


def pretrain(cfg: DictConfig) -> Path:
    """Run domain-adaptive pre-training; returns the saved model directory."""
    if cfg.pretrain.max_steps < 1 or cfg.pretrain.batch_size < 1:
        raise ConfigError("pretrain.max_steps and pretrain.batch_size must be >= 1.")
    check_buildable(cfg)
    run = to_object(cfg)
    optimizer = copy.copy(run.model.optimizer)  # a copy keeps the class's extra keyword arguments
    optimizer.lr = run.pretrain.lr
    out = output_dir(cfg)
    L.seed_everything(cfg.seed, workers=True)
    tokenizer = load_tokenizer(cfg.model)
    model, objective = build_language_model(run, tokenizer)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=objective == "mlm",
                                               mlm_probability=cfg.pretrain.mlm_probability)
    loader = DataLoader(in_domain_texts(cfg, tokenizer), batch_size=cfg.pretrain.batch_size, shuffle=True,
                        collate_fn=collator, num_workers=cfg.data.num_workers)
    trainer_kwargs = {k: v for k, v in trainer_arguments(run.trainer, out.parent).items()
                      if k not in ("max_steps", "max_epochs", "limit_val_batches")}
    trainer = L.Trainer(max_steps=cfg.pretrain.max_steps, max_epochs=-1, limit_val_batches=0,
                        logger=CSVLogger(out.parent, name="csv", version=""), enable_checkpointing=False,
                        default_root_dir=str(out.parent), **trainer_kwargs)
    log.info("Pre-training (%s) %s for %d steps on %d texts", objective, cfg.model.name_or_path,
             cfg.pretrain.max_steps, len(loader.dataset))
    os.environ[RUN_DIR_ENV] = str(out)  # inherited by the processes a DDP launcher starts
    try:
        trainer.fit(LanguageModelPretrainer(model, optimizer, run.model.scheduler), train_dataloaders=loader)
    finally:
        os.environ.pop(RUN_DIR_ENV, None)
    _save(model, tokenizer, cfg, out)
    return out


@rank_zero_only
def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, cfg: DictConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out.parent / "config.yaml").write_text(to_yaml(cfg))


@entry_point(log)
def main(overrides: list[str]) -> int:
    out = pretrain(compose(overrides))
    if rank_zero_only.rank == 0:
        experiment = next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), "<name>")
        print(f"Saved {out}\nFine-tune from it: make train EXP={experiment} "
              f'ARGS="model.name_or_path={out} model.pretrained=true"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
