"""Compression report: the fp32 model and each compressed variant on the same test examples
(src.reporting.compression_report).

    python -m src.cli.compress_report ckpt=runs/imdb_minilm/<run>/checkpoints/last.ckpt \\
        [pruned=<ckpt>] [heads=<ckpt>] [qat_int8=<.safetensors>] [distilled=<ckpt>] [ptq_int8=<.safetensors>] \\
        [limit_test=2000] [rounds=5] [min_run_time=1.0] [seq_len=256] [threads=2] [inductor=true] [compiled=true] \\
        [calibration_batches=8] [score_slower=false] [out=<dir>]

Writes compression.{md,json} and the accuracy-vs-latency PNG to `out` (default <run_dir>/report).
"""

import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.errors import ConfigError
from src.reporting.compression_report import VARIANTS, compression_report

log = logging.getLogger("src.cli.compress_report")


@dataclass
class CompressReportOptions:
    ckpt: Path = MISSING  # the fp32 checkpoint
    out: Path | None = None  # default <run_dir>/report
    pruned: str | None = None  # the variants (checkpoints or int8 .safetensors files); each one given is measured
    heads: str | None = None
    ptq_int8: str | None = None  # made by `make quantize` when not given
    qat_int8: str | None = None
    distilled: str | None = None
    limit_test: int = 2000  # stratified test examples
    rounds: int = 5  # interleaved timing rounds
    min_run_time: float = 1.0  # seconds per blocked_autorange measurement
    seq_len: int = 256  # length of the random timing inputs
    threads: int = 2  # torch threads while timing
    inductor: bool = True  # also static int8 compiled by Inductor (plain and bf16); needs a C++ compiler
    compiled: bool = True  # also fp32 and bf16 compiled by Inductor (bf16 eager is always measured)
    calibration_batches: int = 8  # validation batches that calibrate the static int8 activation ranges
    score_slower: bool = False  # also score the fp32 model's configurations slower than fp32 eager (bf16 on AVX2)


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, CompressReportOptions).options
    given = {name: path for name in VARIANTS if (path := getattr(options, name))}
    settings = {k: v for k, v in asdict(options).items() if k not in ("ckpt", "out", *VARIANTS)}
    if min(options.rounds, options.threads, options.min_run_time, options.calibration_batches) <= 0:
        raise ConfigError("rounds, threads, min_run_time and calibration_batches must be positive.")
    markdown = compression_report(options.ckpt, given, settings, options.out)
    print(markdown.read_text())
    print(f"Report: {markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
