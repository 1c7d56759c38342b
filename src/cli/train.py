"""Train, validate and test one configured run.

    python -m src.cli.train experiment=imdb_minilm trainer.max_epochs=1 model.optimizer.lr=3e-5

Each run writes runs/<experiment>/<timestamp>/ (see src.rundir). torch, transformers, datasets and lightning are
imported after the config is composed and checked: a config error is reported in well under a second.
"""

import logging
import sys

from src.cli import entry_point, parse_args, print_metrics
from src.config import compose
from src.training import train

log = logging.getLogger("src.cli.train")


@entry_point(log)
def main(args: list[str]) -> int:
    summary = train(compose(parse_args(args, config=True).overrides))
    from lightning.fabric.utilities.rank_zero import rank_zero_only  # set up by train()

    if rank_zero_only.rank == 0:
        print_metrics(summary)
        print(f"Run directory: {summary['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
