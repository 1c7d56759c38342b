"""Merge a checkpoint's LoRA/AdaLoRA adapter into plain weights and save it with its tokenizer.

    python -m src.cli.merge ckpt=runs/<exp>/<run>/checkpoints/last.ckpt out=exported/<name>

Prompt tuning (nothing to merge) is saved as a peft adapter directory; other modes as they are.
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.errors import ConfigError

log = logging.getLogger("src.cli.merge")


@dataclass
class MergeOptions:
    ckpt: Path = MISSING  # a fine-tuned checkpoint
    out: Path = MISSING  # the save_pretrained directory to write


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, MergeOptions).options
    if not options.ckpt.is_file():
        raise ConfigError(f"Checkpoint not found: {options.ckpt}.")
    from src.modules.finetuning import merge_and_save  # after the checks: imports torch, peft, lightning
    from src.run import Run

    run = Run.open(options.ckpt)
    out = merge_and_save(run.load_classifier().model, run.tokenizer, options.out)
    print(f"Saved {out} (load it with model.name_or_path={out} or AutoModelForSequenceClassification)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
