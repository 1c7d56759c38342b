"""Text cleaning before tokenization: each step is a pure `str -> str` function switched on in config.

Steps run in the order of `STEPS` (the order of `CleaningConfig`); texts that end up empty are
dropped from the split and counted, as are the texts a step changed.
"""

import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex
from datasets import Dataset
from omegaconf import OmegaConf
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from src.datamodules.hashing import stable_hash
from src.datamodules.sources import text_fields

HTML_TAG = re.compile(r"<[^<>]{0,200}>")  # <br />, <i>, <a href="...">; length-bounded to skip a stray "<"
URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.IGNORECASE)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
REPEATED_PUNCTUATION = re.compile(r"([^\w\s])\1+")
WORD = re.compile(r"\b[\w']+\b")
WHITESPACE = re.compile(r"\s+")
LINE_BREAKS = re.compile(r"[\t\n\r]")
CONTROL = regex.compile(r"[\p{Cc}\p{Cf}]")  # control and format characters (zero-width ones included)
SPECIAL = regex.compile(r"[\p{S}\p{Co}\p{Cn}]")  # symbols, emoji, private-use and unassigned code points


def strip_html(text: str) -> str:
    """Replace tags with a space (so `a<br />b` keeps two words) and unescape entities (`&amp;` -> `&`)."""
    return html.unescape(HTML_TAG.sub(" ", text))


def normalize_unicode(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def remove_control_chars(text: str) -> str:
    """Drop control, format and zero-width characters; tabs and newlines become spaces."""
    return CONTROL.sub("", LINE_BREAKS.sub(" ", text))


def remove_urls(text: str) -> str:
    return URL.sub(" ", text)


def remove_emails(text: str) -> str:
    return EMAIL.sub(" ", text)


def remove_special_chars(text: str) -> str:
    """Drop symbols, emoji and private-use characters; letters, digits and punctuation stay."""
    return SPECIAL.sub("", text)


def collapse_repeated_punctuation(text: str) -> str:
    """A run of the same punctuation character becomes one (`!!!` -> `!`, `.....` -> `.`)."""
    return REPEATED_PUNCTUATION.sub(r"\1", text)


def lowercase(text: str) -> str:
    return text.lower()


def remove_stop_words(text: str) -> str:
    """Drop the words of scikit-learn's English stop-word list (case-insensitive); punctuation stays."""
    return WORD.sub(lambda m: "" if m.group(0).lower() in ENGLISH_STOP_WORDS else m.group(0), text)


def normalize_whitespace(text: str) -> str:
    return WHITESPACE.sub(" ", text).strip()


# CleaningConfig field -> step, in the order they run.
STEPS: dict[str, Callable[[str], str]] = {
    "html": strip_html,
    "unicode_nfkc": normalize_unicode,
    "control_chars": remove_control_chars,
    "urls": remove_urls,
    "emails": remove_emails,
    "special_chars": remove_special_chars,
    "repeated_punctuation": collapse_repeated_punctuation,
    "lowercase": lowercase,
    "stop_words": remove_stop_words,
    "whitespace": normalize_whitespace,
}


def enabled_steps(cleaning_cfg: Any) -> list[Callable[[str], str]]:
    return [step for name, step in STEPS.items() if cleaning_cfg[name]]


def _apply(steps: list[Callable[[str], str]], text: str) -> str:
    """Run `steps` on `text`, in order."""
    for step in steps:
        text = step(text)
    return text


def clean_text(text: str, cleaning_cfg: Any) -> str:
    """Apply every enabled step, in order."""
    return _apply(enabled_steps(cleaning_cfg), text)


@dataclass
class CleaningStats:
    """What cleaning did to one split: rows in, rows whose text changed, rows dropped as empty."""

    rows: int
    changed: int
    dropped: int


def clean_dataset(dataset: Dataset, cleaning_cfg: Any) -> tuple[Dataset, CleaningStats]:
    """Clean the text column(s) (datasets.map, cached by a fingerprint of the steps) and drop rows with an empty
    text (either side of a text pair)."""
    steps = enabled_steps(cleaning_cfg)
    settings = OmegaConf.to_container(OmegaConf.create(cleaning_cfg))
    columns = text_fields(dataset)

    def clean_batch(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        cleaned = {column: [_apply(steps, text) for text in batch[column]] for column in columns}
        changed = [any(row) for row in zip(*(_changed(batch[c], cleaned[c]) for c in columns), strict=True)]
        return {**cleaned, "changed": changed}

    mapped = dataset.map(clean_batch, batched=True, desc="Cleaning",
                         new_fingerprint=stable_hash([dataset._fingerprint, "clean", settings]))
    changed = sum(mapped["changed"])
    kept = mapped.filter(lambda batch: [all(row) for row in zip(*(batch[c] for c in columns), strict=True)],
                         batched=True, desc="Dropping empty",
                         new_fingerprint=stable_hash([mapped._fingerprint, "non-empty"]))
    stats = CleaningStats(rows=len(dataset), changed=changed, dropped=len(dataset) - len(kept))
    return kept.remove_columns("changed"), stats


def _changed(before: list[str], after: list[str]) -> list[bool]:
    """Per row: did cleaning change the text."""
    return [a != b for a, b in zip(before, after, strict=True)]
