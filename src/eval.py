"""Evaluate a checkpoint on the test split of the data it was trained on (or overridden data keys).

    python -m src.eval ckpt=runs/imdb_minilm/<run>/checkpoints/last.ckpt [data.limit_test=null] [out=metrics.json]

Prints the metrics table and writes metrics JSON (default: <run_dir>/eval/metrics.json).
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.cli import entry_point
from src.config import compose
from src.errors import ConfigError
from src.train import print_metrics

log = logging.getLogger("src.eval")


def run_config_for(ckpt: Path, overrides: list[str]) -> DictConfig:
    """The saved config of the checkpoint's run, with command-line overrides applied."""
    saved = ckpt.resolve().parent.parent / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"No config.yaml next to {ckpt} (expected {saved}); evaluate a checkpoint from a run dir.")
    cfg = OmegaConf.load(saved)
    choices = cfg.pop("choices", {})
    base = compose([f"{group}={name}" for group, name in choices.items()])
    return OmegaConf.merge(base, cfg, OmegaConf.from_dotlist(overrides))


def evaluate(ckpt: Path, overrides: list[str], out: Path | None = None) -> dict[str, Any]:
    """Test-split metrics of `ckpt`, written as JSON."""
    if not ckpt.is_file():
        raise ConfigError(f"Checkpoint not found: {ckpt}. Pass CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt.")
    cfg = run_config_for(ckpt, overrides)
    import lightning as L  # after the checks above: a wrong path or key is reported at once

    from src.datamodules.text_classification import TextClassificationDataModule
    from src.modules.model_builder import load_tokenizer
    from src.modules.text_classifier import TextClassifier

    L.seed_everything(cfg.seed, verbose=False)
    model = TextClassifier.from_checkpoint(ckpt)
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    eval_dir = ckpt.resolve().parent.parent / "eval"
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, logger=False,
                        default_root_dir=str(eval_dir), enable_progress_bar=False)
    (results,) = trainer.test(model, datamodule=datamodule, verbose=False)
    summary = {"checkpoint": str(ckpt), "experiment": cfg.experiment, "test": {k: float(v) for k, v in results.items()}}
    out = out or eval_dir / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    return summary


@entry_point(log)
def main(args: list[str]) -> int:
    options = dict(a.split("=", 1) for a in args if a.split("=", 1)[0] in ("ckpt", "out"))
    overrides = [a for a in args if a.split("=", 1)[0] not in ("ckpt", "out")]
    if "ckpt" not in options:
        raise ConfigError("Missing ckpt=<path to a .ckpt file> (make eval CKPT=...).")
    out = Path(options["out"]) if "out" in options else None
    print_metrics(evaluate(Path(options["ckpt"]), overrides, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
