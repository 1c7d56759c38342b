"""What a run does to raw text before the model sees it: its cleaning steps, then truncation to max_length (and
whether it reads one text or a text pair).

Saved as preprocessing.json next to an exported model, so inference cleans and cuts text exactly as training did.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from src.datamodules.cleaning import STEPS, clean_text
from src.datamodules.text_classification import encode_texts
from src.errors import ConfigError, EmptyTextError, InputTextError

PREPROCESSING_FILE = "preprocessing.json"


@dataclass(frozen=True)
class Preprocessing:
    """The run's `data.cleaning` switches and `data.max_length` / `truncation` / `head_fraction`; in an export,
    the first `cleaning_normalizers` normalizers of its tokenizer carry the cleaning (serving.tokenizer_cleaning)."""

    max_length: int
    truncation: str = "head"
    head_fraction: float = 0.25
    cleaning: dict[str, bool] = field(default_factory=dict)
    cleaning_normalizers: int = 0
    text_columns: list[str] = field(default_factory=lambda: ["text"])  # two: the model classifies text pairs

    @classmethod
    def from_data_config(cls, data_cfg: Any) -> "Preprocessing":
        """The preprocessing of a run's `data` config."""
        return cls(max_length=int(data_cfg.max_length), truncation=str(data_cfg.truncation),
                   head_fraction=float(data_cfg.head_fraction),
                   cleaning={name: bool(data_cfg.cleaning[name]) for name in STEPS},
                   text_columns=list(data_cfg.text_columns))

    def save(self, directory: Path) -> Path:
        """Write preprocessing.json into `directory`."""
        path = Path(directory) / PREPROCESSING_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> "Preprocessing":
        """Read preprocessing.json from an exported model directory."""
        path = Path(directory) / PREPROCESSING_FILE
        if not path.is_file():
            raise ConfigError(f"{path} is missing: {directory} was not written by `make export`; "
                              "export the run's checkpoint again (make export CKPT=... OUT=...).")
        return cls(**json.loads(path.read_text()))

    def clean(self, texts: list[str]) -> list[str]:
        """Every text cleaned as in training; EmptyTextError naming the rows that end up empty."""
        cleaned = [clean_text(text, self.cleaning) for text in texts]
        empty = [i for i, text in enumerate(cleaned) if not text.strip()]
        if empty:
            raise EmptyTextError(f"{len(empty)} input text(s) are empty after the run's cleaning (row(s) "
                                 f"{', '.join(str(i + 1) for i in empty[:10])}{' ...' if len(empty) > 10 else ''}); "
                                 "remove them from the input.")
        return cleaned

    def check_pairs(self, pairs: list[str] | None) -> None:
        """InputTextError unless text pairs come for a text-pair model and single texts for a single-text one."""
        if len(self.text_columns) == 2 and pairs is None:
            raise InputTextError(f"The model classifies text pairs (trained on {' + '.join(self.text_columns)}): "
                                 "give the second texts too (PAIR_COLUMN=<column> for a table, TEXT_PAIR=\"...\").")
        if len(self.text_columns) == 1 and pairs is not None:
            raise InputTextError(f"The model classifies single texts (trained on {self.text_columns[0]}), not text "
                                 "pairs: drop PAIR_COLUMN / TEXT_PAIR.")

    def encode(self, tokenizer: PreTrainedTokenizerBase, texts: list[str],
               pairs: list[str] | None = None) -> dict[str, list[Any]]:
        """Token ids of the cleaned texts (text pairs when the model takes them), cut to max_length the run's way
        (no padding)."""
        self.check_pairs(pairs)
        return encode_texts(tokenizer, self.clean(texts), self.max_length, self.truncation, self.head_fraction,
                            None if pairs is None else self.clean(pairs))
