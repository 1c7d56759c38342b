"""Train, validate and test one configured run.

    python -m src.cli.train experiment=imdb_minilm trainer.max_epochs=1 model.optimizer.lr=3e-5
    python -m src.cli.train experiment=imdb_tiny print_config=true   # the composed config as a tree, no training

Each run writes runs/<experiment>/<timestamp>/ (see src.rundir). torch, transformers, datasets and lightning are
imported after the config is composed and checked: a config error is reported in well under a second.
"""

import logging
import sys

from src.cli import composed_run_config, entry_point, print_metrics
from src.training import train

log = logging.getLogger("src.cli.train")


@entry_point(log)
def main(args: list[str]) -> int:
    cfg = composed_run_config(args)
    if cfg is None:
        return 0
    summary = train(cfg)
    from lightning.fabric.utilities.rank_zero import rank_zero_only  # set up by train()

    if rank_zero_only.rank == 0:
        print_metrics(summary)
        print(f"Run directory: {summary['run_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
