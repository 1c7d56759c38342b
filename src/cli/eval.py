"""Evaluate a checkpoint on the test split of the data it was trained on (or overridden data keys).

    python -m src.cli.eval ckpt=runs/imdb_minilm/<run>/checkpoints/last.ckpt [data.limit_test=null] [out=metrics.json]

Prints the metrics table and writes metrics JSON (default: <run_dir>/eval/<checkpoint name>.json, e.g. last.json).
A checkpoint trained on other labels than the run's data.label_names is refused.
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from src.cli import entry_point, parse_args, print_metrics
from src.training import evaluate

log = logging.getLogger("src.cli.eval")


@dataclass
class EvalOptions:
    ckpt: Path = MISSING  # runs/<experiment>/<run>/checkpoints/last.ckpt
    out: Path | None = None  # default <run_dir>/eval/<checkpoint name>.json


@entry_point(log)
def main(args: list[str]) -> int:
    options, overrides = parse_args(args, EvalOptions, config=True)
    print_metrics(evaluate(options.ckpt, overrides, options.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
