"""Write the data report of an experiment's data pipeline (no training; src.reporting.data_profile).

    python -m src.cli.data_report experiment=imdb_minilm data.limit_train=null

Output: <run_dir>/report/ when run_dir is set, else reports/data/<experiment>/ (report.md, report.json,
token_lengths.png, class_counts.png); logged to W&B (job_type data-report) when the logger is enabled.
"""

import logging
import sys

from src.builders import build_datamodule, build_tokenizer
from src.cli import composed_run_config, entry_point
from src.reporting.data_profile import data_report

log = logging.getLogger("src.cli.data_report")


@entry_point(log)
def main(args: list[str]) -> int:
    cfg = composed_run_config(args, "logger.wandb.job_type=data-report")
    if cfg is None:
        return 0
    markdown = data_report(cfg, build_datamodule(cfg, build_tokenizer(cfg)))
    print(markdown.read_text())
    print(f"Report written to {markdown.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
