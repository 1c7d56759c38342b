"""Classify raw text with a run's checkpoint or an exported model (src.serving.predictor).

    python -m src.cli.predict ckpt=<.ckpt> | model=<exported dir>  text="..." | input=<file or ->
        [out=<.csv|.jsonl>] [column=text] [backend=torch|onnx|onnx-int8|inductor-int8|inductor-int8-bf16] \\
        [batch_size=32] [threads=N]
    A text-pair model (data.text_columns=[premise,hypothesis]) takes text="..." text_pair="..." or a table input
    with column=<first text> pair_column=<second text>.

Writes a table input's other columns (e.g. `id`), text (and text_pair), label and prob_<label> per class to `out`
(atomically), or JSON lines to stdout without `out`.
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from src.cli import entry_point, parse_args
from src.errors import ConfigError

log = logging.getLogger("src.cli.predict")


# free text and `-`: taken verbatim, not parsed as YAML values like the other options
RAW = ("text", "text_pair", "input")


@dataclass
class PredictOptions:
    ckpt: Path | None = None  # a run's checkpoint (PyTorch backend)
    model: Path | None = None  # an exported directory (make export)
    text: str | None = None  # one text to classify
    input: str | None = None  # .txt (one text per line), .csv / .jsonl / .parquet, or - for stdin
    out: Path | None = None  # .csv or .jsonl; JSON lines on stdout when omitted
    column: str = "text"  # the text column of a CSV / JSONL / Parquet input
    pair_column: str | None = None  # its second text column, for a text-pair model
    text_pair: str | None = None  # the second text of `text`, for a text-pair model
    backend: str = "torch"  # torch, onnx, onnx-int8 (an export made with format=onnx), inductor-int8[-bf16] (ckpt)
    batch_size: int = 32
    threads: int | None = None  # ONNX Runtime intra-op threads (default: its own choice)


@entry_point(log)
def main(args: list[str]) -> int:
    raw = {key: value for key, _, value in (arg.partition("=") for arg in args) if key in RAW}
    options = parse_args([arg for arg in args if arg.partition("=")[0] not in RAW], PredictOptions).options
    options.text, options.text_pair, options.input = raw.get("text"), raw.get("text_pair"), raw.get("input")
    if (options.ckpt is None) == (options.model is None):
        raise ConfigError("Give exactly one of ckpt=<.ckpt> (make predict CKPT=...) or model=<exported directory> "
                          "(MODEL=...).")
    if (options.text is None) == (options.input is None):
        raise ConfigError("Give exactly one of text=\"...\" (TEXT=) or input=<file, or - for stdin> (INPUT=).")
    if options.batch_size < 1:
        raise ConfigError(f"batch_size={options.batch_size}: use a positive number.")
    if options.ckpt is not None and not options.ckpt.is_file():
        raise ConfigError(f"Checkpoint not found: {options.ckpt}. CKPT= takes a .ckpt file such as "
                          "runs/<experiment>/<run>/checkpoints/last.ckpt (an exported directory is MODEL=).")
    if options.model is not None and not options.model.is_dir():
        raise ConfigError(f"Exported model directory not found: {options.model}. Create one with "
                          "`make export CKPT=<.ckpt> OUT=<directory>`.")
    from src.serving.predictor import load_predictor
    from src.serving.text_io import jsonl_lines, prediction_table, read_inputs, write_table

    inputs = read_inputs(options.input, options.text, options.column, options.pair_column,
                         options.text_pair)  # input errors before loading the model
    texts = inputs.pop("text").tolist()
    pairs = inputs.pop("text_pair").tolist() if "text_pair" in inputs else None
    predictor = load_predictor(options.ckpt or options.model, options.backend, options.threads)
    table = prediction_table(texts, predictor.predict(texts, options.batch_size, pairs=pairs),
                             predictor.label_names, inputs, pairs)
    if options.out is None:
        sys.stdout.write(jsonl_lines(table))
    else:
        print(f"Wrote {len(table)} predictions to {write_table(table, options.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
