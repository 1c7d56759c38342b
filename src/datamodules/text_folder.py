"""`TextFolderDataModule`: one text file per example, one folder per class, the layout of the original IMDB release
(aclImdb/train/pos/0_9.txt): `<data.path>/<split>/<label name>/*.txt`."""

from pathlib import Path
from typing import Any

from datasets import Dataset

from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import DataError


class TextFolderDataModule(TextClassificationDataModule):
    """Reads `<path>/<split>/<label>/*.txt` (folders named as in data.label_names); cleaning, balancing,
    augmentation, tokenization and batching are TextClassificationDataModule's."""

    def split_dir(self, split: str) -> Path:
        return Path(self.cfg.path) / split

    def read_split(self, split: str) -> Dataset:
        """Every `<label>/*.txt` of the split's folder, in sorted order, as `text` + `label` rows."""
        rows = [(path.read_text(encoding="utf-8"), label) for label, name in enumerate(self.cfg.label_names)
                for path in sorted((self.split_dir(split) / name).glob("*.txt"))]
        if not rows:
            raise DataError(f"No <label>/*.txt files under {self.split_dir(split)} "
                            f"(label folders: {', '.join(self.cfg.label_names)}).")
        texts, labels = zip(*rows, strict=True)
        return Dataset.from_dict({"text": list(texts), "label": list(labels)})

    def source_identity(self, split: str) -> list[Any]:
        """The split's folder and each file's name, size and modification time (what the token cache keys on)."""
        files = sorted(self.split_dir(split).glob("*/*.txt"))
        return [str(self.split_dir(split).resolve()),
                [[f"{path.parent.name}/{path.name}", path.stat().st_size, path.stat().st_mtime_ns] for path in files]]
