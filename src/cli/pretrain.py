"""Domain-adaptive pre-training of an experiment's model on its unlabeled train texts (see src.pretraining).

    make pretrain EXP=imdb_minilm ARGS="pretrain.max_steps=500"
    make train EXP=imdb_minilm ARGS="model.name_or_path=<printed dir> model.pretrained=true"
"""

import logging
import sys

from src.cli import composed_run_config, entry_point
from src.pretraining import pretrain

log = logging.getLogger("src.cli.pretrain")


@entry_point(log)
def main(args: list[str]) -> int:
    cfg = composed_run_config(args)
    if cfg is None:
        return 0
    out = pretrain(cfg)
    from lightning.fabric.utilities.rank_zero import rank_zero_only  # set up by pretrain()

    if rank_zero_only.rank == 0:
        print(f"Saved {out}\nFine-tune from it: make train EXP={cfg.experiment} "
              f'ARGS="model.name_or_path={out} model.pretrained=true"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
