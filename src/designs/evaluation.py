"""Score predictions like a transformer run, write a non-Lightning run, predict a split with a checkpoint."""

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from src import rundir
from src.builders import build_datamodule, build_tokenizer, evaluation_trainer
from src.modules.text_classifier import TextClassifier, classification_metrics
from src.run import Run


def score(probs: np.ndarray, labels: np.ndarray, label_names: list[str], prefix: str = "test/") -> dict[str, float]:
    """The metrics a transformer run logs (same torchmetrics collection and names), plus the NLL as loss."""
    probs_t = torch.as_tensor(probs, dtype=torch.float32)
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    metrics = classification_metrics(len(label_names), prefix)(probs_t, labels_t)
    flat = {}
    for name, value in metrics.items():
        if value.ndim == 0:
            flat[name] = float(value)
        else:
            flat.update({f"{name}/{label}": float(v) for label, v in zip(label_names, value, strict=True)})
    flat[f"{prefix}loss"] = float(torch.nn.functional.nll_loss(probs_t.clamp_min(1e-12).log(), labels_t))
    return flat


def write_run(
    run_dir: Path, cfg: DictConfig, started: float, test: tuple[np.ndarray, np.ndarray], extra: dict[str, Any]
) -> dict[str, Any]:
    """config.yaml (`cfg`, as a training run saves it) + predictions_test.csv + metrics.json for a baseline/fusion."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.save_config(cfg, run_dir)
    label_names = list(cfg.data.label_names)
    rundir.save_predictions(run_dir, "test", test[0], test[1], label_names)
    summary = {
        "experiment": cfg.experiment,
        "seed": cfg.seed,
        "run_dir": str(run_dir),
        "duration_s": time.perf_counter() - started,
        **extra,
        "test": score(*test, label_names),
    }
    rundir.write_metrics(run_dir, summary)
    return summary


def predict_split(model: TextClassifier, cfg: DictConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and labels of `model` on one split of the run config's data (same rows)."""
    datamodule = build_datamodule(cfg, build_tokenizer(cfg))
    datamodule.setup()
    loader = {"validation": datamodule.val_dataloader, "test": datamodule.test_dataloader}[split]()
    # full precision whatever the run trained in: the predictions that fusions combine were always float32
    trainer = evaluation_trainer(cfg, Path(cfg.run_dir or "."), precision="32-true")
    logits = torch.cat(trainer.predict(model, dataloaders=loader))
    labels = np.asarray(datamodule.splits[split]["labels"], dtype=np.int64)
    return logits.softmax(-1).double().numpy(), labels


def split_predictions(run_dir: Path, cfg: DictConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A run's predictions on `split`: read from its CSV, or computed once with its checkpoint and saved."""
    if not rundir.predictions_path(run_dir, split).is_file():
        probs, labels = predict_split(Run.open(run_dir).load_classifier(), cfg, split)
        rundir.save_predictions(run_dir, split, probs, labels, list(cfg.data.label_names))
    return rundir.read_predictions(run_dir, split)
