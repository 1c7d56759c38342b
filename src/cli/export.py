"""Export a run's checkpoint for use outside the lab (src.serving.pretrained): a Hugging Face model directory.

    python -m src.cli.export ckpt=runs/<experiment>/<run>/checkpoints/last.ckpt out=exported/<name> \\
        [format=hf|onnx] [push=<user>/<repo>]

format=onnx adds model.onnx (parity-checked against PyTorch) and model.int8.onnx (ONNX Runtime dynamic int8).
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.errors import ConfigError

log = logging.getLogger("src.cli.export")
FORMATS = ("hf", "onnx")


@dataclass
class ExportOptions:
    ckpt: Path = MISSING  # a run's checkpoint (runs/<experiment>/<run>/checkpoints/last.ckpt)
    out: Path = MISSING  # the directory to write (replaced if it holds an earlier export)
    format: str = "hf"  # hf: save_pretrained directory; onnx: the same plus model.onnx and model.int8.onnx
    push: str | None = None  # a Hub repository id (<user>/<repo>) to upload the export to


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, ExportOptions).options
    if options.format not in FORMATS:
        raise ConfigError(f"Bad format={options.format}: use one of {', '.join(FORMATS)}.")
    from src.serving.pretrained import export_model, push_to_hub

    out = export_model(options.ckpt, options.out, onnx=options.format == "onnx")
    print(f"Exported {out}: load it with transformers.pipeline('text-classification', model='{out}') "
          f"or `make predict MODEL={out} TEXT=\"...\"`.")
    if options.push:
        print(f"Pushed to {push_to_hub(out, options.push)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
