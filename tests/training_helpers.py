"""A few optimizer steps of a composed config with a bare Trainer: fast checks of what training changes."""

import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from src.builders import build_model, build_trainer, check_buildable
from src.config import to_object
from src.datamodules.text_classification import TextClassificationDataModule
from src.loggers import build_loggers
from src.modules.model_builder import load_tokenizer
from src.modules.text_classifier import TextClassifier


def build_module(cfg: DictConfig) -> TextClassifier:
    L.seed_everything(cfg.seed, verbose=False)
    return build_model(cfg)


@cache
def _prepared_datamodule(key: str, seed: int) -> TextClassificationDataModule:
    """Set up once per (data config, tokenizer): loading and cleaning the splits dominates a short fit."""
    cfg = OmegaConf.create(key)
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=seed)
    datamodule.setup("fit")
    return datamodule


def datamodule_for(cfg: DictConfig) -> TextClassificationDataModule:
    """A set-up datamodule for `cfg` (shared between tests with the same data and tokenizer)."""
    tokenizer = {"name_or_path": cfg.model.name_or_path, "tokenizer": cfg.model.tokenizer}
    return _prepared_datamodule(OmegaConf.to_yaml({"data": cfg.data, "model": tokenizer}), cfg.seed)


def quick_fit(cfg: DictConfig, module: TextClassifier | None = None, callbacks: list[Callback] = (),
              **trainer_kwargs: object) -> TextClassifier:
    """Fit `module` (default: built from cfg) without validation, logging or checkpoints."""
    module = module or build_module(cfg)
    datamodule = datamodule_for(cfg)
    settings = {"accelerator": "cpu", "devices": 1, "max_steps": 2, "limit_val_batches": 0, "logger": False,
                "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False,
                "num_sanity_val_steps": 0, **trainer_kwargs}
    trainer = L.Trainer(callbacks=list(callbacks), **settings)
    trainer.fit(module, datamodule=datamodule)
    return module


def configured_fit(cfg: DictConfig, run_dir: Path, extra: Sequence[Callback] = ()) -> L.Trainer:
    """Fit with the Trainer, callbacks, loggers and profiler `cfg` names, plus `extra` callbacks (no final
    validation, test or outputs)."""
    check_buildable(cfg)
    run = to_object(cfg)
    trainer = build_trainer(run, run_dir, build_loggers(run, run_dir, "test-run", {}), extra)
    trainer.fit(build_module(cfg), datamodule=datamodule_for(cfg))
    return trainer


def fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a new interpreter at the repository root: for what pytest's own process has already changed
    (imported modules, warning filters, torch's thread count)."""
    return subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=120)
