"""Domain-adaptive pre-training: continue masked-LM (BERT family) or causal-LM (GPT-2 family) training on the
experiment's unlabeled in-domain train texts (e.g. IMDB reviews), then save a `save_pretrained` directory.

The library half of `python -m src.cli.pretrain`. Only the train split's texts are used (labels ignored;
validation and test texts never). The optimizer and schedule come from the experiment's `model.optimizer` /
`model.scheduler` groups with `pretrain.lr`. Like src.training, the heavy libraries are imported after the
config is composed and checked.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from src import rundir
from src.builders import build_datamodule, build_tokenizer, build_trainer, check_buildable
from src.config import to_object

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def output_dir(cfg: DictConfig) -> Path:
    if cfg.pretrain.output_dir:
        return Path(cfg.pretrain.output_dir)
    if os.environ.get(rundir.RUN_DIR_ENV):  # a DDP worker: the parent's directory
        return Path(os.environ[rundir.RUN_DIR_ENV])
    return rundir.RUNS_ROOT / cfg.experiment / "pretrain" / rundir.timestamp() / "model"


def pretrain(cfg: DictConfig) -> Path:
    """Run domain-adaptive pre-training; returns the saved model directory."""
    check_buildable(cfg)
    import lightning as L
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader
    from transformers import DataCollatorForLanguageModeling

    from src.datamodules.pretraining_texts import in_domain_texts
    from src.modules.language_model import LanguageModelPretrainer, build_language_model

    run = to_object(cfg)
    optimizer = copy.copy(run.model.optimizer)  # a copy keeps the class's extra keyword arguments
    optimizer.lr = run.pretrain.lr
    out = output_dir(cfg)
    L.seed_everything(cfg.seed, workers=True)
    tokenizer = build_tokenizer(cfg)
    model, objective = build_language_model(run, tokenizer)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=objective == "mlm",
                                               mlm_probability=cfg.pretrain.mlm_probability)
    texts = in_domain_texts(build_datamodule(cfg, tokenizer))
    loader = DataLoader(texts, batch_size=cfg.pretrain.batch_size, shuffle=True, collate_fn=collator,
                        num_workers=cfg.data.num_workers)
    trainer = build_trainer(run, out.parent, CSVLogger(out.parent, name="csv", version=""), configured=False,
                            max_steps=cfg.pretrain.max_steps, max_epochs=-1, limit_val_batches=0,
                            enable_checkpointing=False)
    log.info("Pre-training (%s) %s for %d steps on %d texts", objective, cfg.model.name_or_path,
             cfg.pretrain.max_steps, len(loader.dataset))
    os.environ[rundir.RUN_DIR_ENV] = str(out)  # inherited by the processes a DDP launcher starts
    try:
        trainer.fit(LanguageModelPretrainer(model, optimizer, run.model.scheduler), train_dataloaders=loader)
    finally:
        os.environ.pop(rundir.RUN_DIR_ENV, None)
    if rank_zero_only.rank == 0:
        _save(model, tokenizer, cfg, out)
    return out


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, cfg: DictConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    rundir.save_config(cfg, out.parent)
