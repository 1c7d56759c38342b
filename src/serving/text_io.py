"""Raw texts in, predictions out: the input kinds `make predict` reads and the files it writes.

Inputs: one string, a text file (one text per line: lines end at "\n" only, so a text holding U+2028 or another
Unicode line separator stays one text), CSV / JSONL / Parquet with a text column (two for text pairs), or stdin
(`-`, one text per line); a text pair is TEXT + TEXT_PAIR or a table's COLUMN + PAIR_COLUMN. Outputs: CSV or
JSONL (by suffix) with a table input's other columns (an `id`, ...), the text (and text_pair), the predicted
label and one probability per class, written to a temporary file in the same folder and renamed into place, so
a failure leaves no partial file.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from src.errors import ConfigError, EmptyTextError, MissingColumnError, UnreadableInputError
from src.rundir import atomic_open

TABLE_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": pd.read_csv,
    ".jsonl": lambda path: pd.read_json(path, lines=True),
    ".parquet": pd.read_parquet,
}
OUTPUT_SUFFIXES = (".csv", ".jsonl")


def read_lines(stream: TextIO, source: str) -> list[str]:
    """One text per line, split at newlines only (str.splitlines also splits at U+2028, U+0085, ...); a final
    newline is not a line; EmptyTextError naming the empty lines."""
    lines = [line.removesuffix("\r") for line in stream.read().split("\n")]
    if lines[-1] == "":
        lines.pop()
    empty = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    if empty:
        raise EmptyTextError(f"{source} has {len(empty)} empty line(s) (line(s) {', '.join(map(str, empty[:10]))}"
                             f"{' ...' if len(empty) > 10 else ''}); remove them: every line is one text.")
    return lines


def read_table(path: Path, column: str, pair_column: str | None = None) -> pd.DataFrame:
    """A CSV / JSONL / Parquet file, its `column` as `text` (and `pair_column` as `text_pair`) first; named errors
    for a missing column or empty cells."""
    try:
        table = TABLE_READERS[path.suffix.lower()](path)
    except (OSError, ValueError, ImportError) as err:  # pandas / pyarrow parse errors are ValueErrors
        raise UnreadableInputError(f"Cannot read {path} as {path.suffix[1:]}: {err}".splitlines()[0]) from None
    columns = {column: "text", **({pair_column: "text_pair"} if pair_column else {})}
    for name, option in zip(columns, ("COLUMN=<name of the text column>", "PAIR_COLUMN=<name of the second text "
                                      "column>"), strict=False):
        if name not in table.columns:
            raise MissingColumnError(f"{path} has no column '{name}' (columns: {', '.join(map(str, table.columns))}); "
                                     f"pass {option}.")
        _require_text(path, name, table[name])
    texts = [table[name].rename(field) for name, field in columns.items()]
    return pd.concat([*texts, table.drop(columns=list(columns))], axis=1)


def _require_text(path: Path, column: str, values: pd.Series) -> None:
    """EmptyTextError naming the rows of `column` that are empty or not text."""
    empty = [i + 1 for i, value in enumerate(values) if not isinstance(value, str) or not value.strip()]
    if empty:
        raise EmptyTextError(f"{path}: column '{column}' is empty or not text in {len(empty)} row(s) (row(s) "
                             f"{', '.join(map(str, empty[:10]))}{' ...' if len(empty) > 10 else ''}).")


def read_texts(source: str | None = None, text: str | None = None, column: str = "text") -> list[str]:
    """The texts to classify: `text`, stdin (`source` '-'), a .txt file or a CSV / JSONL / Parquet table."""
    return read_inputs(source, text, column)["text"].tolist()


def read_inputs(source: str | None = None, text: str | None = None, column: str = "text",
                pair_column: str | None = None, text_pair: str | None = None) -> pd.DataFrame:
    """The input rows: a `text` column (what `read_texts` returns) and, for text pairs (`text_pair`, or a table's
    `pair_column`), a `text_pair` column, then a table input's other columns."""
    if text is not None:
        return _inline(text, text_pair)
    if text_pair is not None:
        raise UnreadableInputError("TEXT_PAIR is the second text of TEXT=\"...\"; for a file, pass "
                                   "PAIR_COLUMN=<column of the second texts>.")
    if source is None:
        raise UnreadableInputError("Nothing to classify: give TEXT=\"...\" or INPUT=<file> (or INPUT=- for stdin).")
    path = Path(source)
    if source != "-" and not path.is_file():
        raise UnreadableInputError(f"Input file not found: {path}.")
    if source != "-" and path.suffix.lower() in TABLE_READERS:
        return read_table(path, column, pair_column)
    if pair_column is not None:
        raise UnreadableInputError(f"PAIR_COLUMN={pair_column} needs a table input ({', '.join(TABLE_READERS)}) "
                                   f"holding both texts of each pair, not {source}.")
    if source == "-":
        return pd.DataFrame({"text": read_lines(sys.stdin, "stdin")})
    if path.suffix.lower() != ".txt":
        raise UnreadableInputError(f"Unsupported input {path}: use .txt (one text per line), "
                                   f"{', '.join(TABLE_READERS)} (with a text column) or - for stdin.")
    try:
        with path.open(encoding="utf-8") as stream:
            return pd.DataFrame({"text": read_lines(stream, str(path))})
    except UnicodeDecodeError as err:
        raise UnreadableInputError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}).") from None


def _inline(text: str, text_pair: str | None) -> pd.DataFrame:
    """One text (or text pair) given on the command line."""
    for name, value in (("TEXT", text), ("TEXT_PAIR", text_pair)):
        if value is not None and not value.strip():
            raise EmptyTextError(f"{name} is empty; give the text to classify.")
    return pd.DataFrame({"text": [text], **({"text_pair": [text_pair]} if text_pair is not None else {})})


def prediction_table(texts: list[str], probs: np.ndarray, label_names: list[str],
                     passthrough: pd.DataFrame | None = None, pairs: list[str] | None = None) -> pd.DataFrame:
    """The `passthrough` columns of the input (an `id`, ...; one named like an output column gets an `input_`
    prefix), then text (and text_pair), label (the most probable class) and prob_<class> for every class."""
    table = pd.DataFrame({"text": texts, **({"text_pair": pairs} if pairs is not None else {}),
                          "label": [label_names[i] for i in probs.argmax(1)]})
    for index, name in enumerate(label_names):
        table[f"prob_{name}"] = probs[:, index].round(6)
    if passthrough is None:
        return table
    kept = passthrough.reset_index(drop=True).rename(columns=lambda c: f"input_{c}" if c in table.columns else c)
    return pd.concat([kept, table], axis=1)


def write_table(table: pd.DataFrame, out: Path) -> Path:
    """Write CSV or JSONL (by suffix) atomically: a temporary file in the same folder, renamed when complete."""
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"Unsupported output {out}: use a .csv or .jsonl file name.")
    with atomic_open(out) as file:  # created with the user's umask (tempfile.mkstemp would make it 0600)
        if out.suffix.lower() == ".csv":
            table.to_csv(file, index=False)
        else:
            table.to_json(file, orient="records", lines=True, force_ascii=False)
    return out


def jsonl_lines(table: pd.DataFrame) -> str:
    """The table as JSON lines (for printing when no output file is given)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in table.to_dict(orient="records"))
