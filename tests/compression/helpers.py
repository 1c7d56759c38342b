"""Shared by the compression and compression-callback tests: a batch of real IMDB text, a saved checkpoint."""

from pathlib import Path

import torch
from omegaconf import DictConfig

from src.datamodules.text_classification import TextClassificationDataModule
from src.modules.model_builder import load_tokenizer
from src.modules.text_classifier import TextClassifier


def real_batch(cfg: DictConfig, size: int = 64) -> dict[str, torch.Tensor]:
    """The first `size` test examples of the composed data config, tokenized and padded."""
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("test")
    return datamodule.collator([datamodule.splits["test"].remove_columns("length")[i] for i in range(size)])


def save_plain_checkpoint(module: TextClassifier, path: Path) -> Path:
    """A checkpoint with what `TextClassifier.from_checkpoint` reads (no Trainer needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"hyper_parameters": dict(module.hparams), "hf_config": module.model.config.to_dict(),
                "state_dict": module.state_dict()}, path)
    return path


def logits(module: TextClassifier, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return module.eval()(batch)
