"""Post-training dynamic int8 quantization of a checkpoint: the cheap alternative to QAT (src.compression.variants).

    python -m src.cli.quantize ckpt=runs/imdb_minilm/<run>/checkpoints/last.ckpt [out=<.safetensors>] [embeddings=false]

Writes <run_dir>/compression/ptq_int8.safetensors, the same format as the QAT callback's qat_int8.safetensors.
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.compression.variants import quantize_checkpoint
from src.run import Run

log = logging.getLogger("src.cli.quantize")


@dataclass
class QuantizeOptions:
    ckpt: Path = MISSING  # an fp32 Lightning checkpoint
    out: Path | None = None  # default <run_dir>/compression/ptq_int8.safetensors
    embeddings: bool = True  # quantize the token embedding too (8-bit rows)


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, QuantizeOptions).options
    out = quantize_checkpoint(Run.open(options.ckpt).checkpoint, options.out, options.embeddings)
    print(f"int8 model: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
