"""Write the data report of an experiment's data pipeline (no training).

    python -m src.data_report experiment=imdb_minilm data.limit_train=null

Output: <run_dir>/report/ when run_dir is set, else reports/data/<experiment>/ (report.md, report.json,
token_lengths.png, class_counts.png); logged to W&B (job_type data-report) when the logger is enabled.
"""

import logging
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from src.cli import entry_point
from src.config import compose, to_object
from src.datamodules.report import build_report, write_report
from src.datamodules.text_classification import TextClassificationDataModule
from src.loggers import build_loggers
from src.modules.model_builder import load_tokenizer

log = logging.getLogger("src.data_report")
REPORTS_ROOT = Path("reports") / "data"


def report_dir(cfg: DictConfig) -> Path:
    return Path(cfg.run_dir) / "report" if cfg.run_dir else REPORTS_ROOT / cfg.experiment


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The scalar figures logged to W&B: per-split token percentiles and truncation, padding, cleaning."""
    scalars: dict[str, float] = {}
    for split, stats in report["splits"].items():
        scalars[f"data/{split}/rows"] = stats["rows"]
        scalars[f"data/{split}/changed_by_cleaning"] = stats["changed_by_cleaning"]
        scalars[f"data/{split}/dropped_by_cleaning"] = stats["dropped_by_cleaning"]
        tokens = stats["tokens"]
        scalars.update({f"data/{split}/tokens_{k}": v for k, v in tokens["percentiles"].items()})
        scalars.update({f"data/{split}/truncated_at_{k}": v for k, v in tokens["truncated_share"].items()})
    scalars.update({f"data/padding_{k}": v for k, v in report["padding"].items()})
    return scalars


def log_report(loggers: list[Logger], report: dict[str, Any], files: dict[str, Path]) -> None:
    """Scalars and PNGs to W&B, plus report.md as a W&B file of the run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_metrics(headline(report))
            for key in ("token_lengths", "class_counts"):
                logger.log_image(key=f"data/{key}", images=[str(files[key])])
            logger.experiment.save(str(files["markdown"]), base_path=str(files["markdown"].parent))
            logger.experiment.finish()


def data_report(cfg: DictConfig) -> Path:
    """Prepare the configured data (cleaning, balancing, augmentation), measure it and write the report."""
    out_dir = report_dir(cfg)
    tokenizer = load_tokenizer(cfg.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    report, lengths = build_report(datamodule)
    report["experiment"] = cfg.experiment
    files = write_report(report, lengths, out_dir)
    if cfg.logger.wandb.enabled:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        log_report(build_loggers(to_object(cfg), out_dir, f"{cfg.experiment}-data-report", resolved), report, files)
    return files["markdown"]


@entry_point(log)
def main(args: list[str]) -> int:
    markdown = data_report(compose(["logger.wandb.job_type=data-report", *args]))
    print(markdown.read_text())
    print(f"Report written to {markdown.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
