"""Post-training dynamic int8 quantization of a checkpoint: the cheap alternative to QAT.

    python -m src.quantize ckpt=runs/imdb_minilm/<run>/checkpoints/last.ckpt [out=<.safetensors>] [embeddings=false]

Every encoder Linear (GPT-2 Conv1D included) gets int8 per-channel weights with per-batch activation
quantization (`torch.ao.quantization.quantize_dynamic`), the token embedding 8-bit rows. Writes
<run_dir>/compression/ptq_int8.safetensors, the same format as the QAT callback's qat_int8.safetensors.
"""

import logging
import sys
from pathlib import Path
from typing import Any

import torch

from src.cli import entry_point
from src.compression.export import export_int8
from src.compression.structure import normalize_record
from src.errors import ConfigError
from src.modules.text_classifier import TextClassifier

log = logging.getLogger("src.quantize")


def checkpoint_units(ckpt: Path) -> dict[str, Any]:
    """The structured-pruning unit record of a checkpoint (empty when nothing was removed)."""
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    return normalize_record(checkpoint.get("compression", {}).get("units"))


def quantize_checkpoint(ckpt: Path, out: Path | None = None, embeddings: bool = True) -> Path:
    """Write the PTQ int8 model of `ckpt`; returns its path."""
    if not ckpt.is_file():
        raise ConfigError(f"Checkpoint not found: {ckpt}. "
                          "Pass CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt.")
    module = TextClassifier.from_checkpoint(ckpt)
    out = out or ckpt.resolve().parent.parent / "compression" / "ptq_int8.safetensors"
    return export_int8(module.model, dict(module.hparams), out, "ptq", checkpoint_units(ckpt), str(ckpt),
                       embeddings=embeddings)


@entry_point(log)
def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = set(args) - {"ckpt", "out", "embeddings"}
    if unknown or "ckpt" not in args:
        raise ConfigError("Usage: python -m src.quantize ckpt=<.ckpt> [out=<.safetensors>] [embeddings=true|false]"
                          f"{'; unknown: ' + ', '.join(sorted(unknown)) if unknown else ''}.")
    out = quantize_checkpoint(Path(args["ckpt"]), Path(args["out"]) if "out" in args else None,
                              args.get("embeddings", "true").lower() != "false")
    print(f"int8 model: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
