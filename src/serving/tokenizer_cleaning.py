"""The run's text cleaning as the exported tokenizer's `normalizer`, so that every client of tokenizer.json
(`transformers.pipeline`, ONNX Runtime with the tokenizer, text-embeddings-inference, ...) cleans as training did.

Each step of src/datamodules/cleaning.py becomes `tokenizers` normalizers (Replace with an Oniguruma regex, NFKC,
Lowercase, Strip). Character classes (`\\s`, `\\w`, `\\p{Cc}`, ...) are listed code point by code point from the
Python patterns themselves, so Oniguruma matches exactly what `re` / `regex` match here. `PARTIAL` and
`NOT_EXPRESSIBLE` name what a normalizer cannot do; the model card repeats them. The lab's own loaders take the
cleaning normalizer off again (`lab_tokenizer`): they clean with the Python steps, as training did.
"""

import copy
import html
import itertools
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import regex
from tokenizers import Regex, normalizers
from tokenizers.normalizers import Normalizer
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from src.datamodules import cleaning

# html.unescape handles every HTML5 entity; these (the ones that occur in review data) have a normalizer each.
# &amp; comes last so that `&amp;lt;` becomes `&lt;`, as html.unescape's single pass does.
ENTITIES = ("&lt;", "&gt;", "&quot;", "&#39;", "&apos;", "&nbsp;", "&amp;")
PARTIAL = {
    "html": f"tags are removed, but of the entities only {' '.join(ENTITIES)} are unescaped (numeric ones such as "
            "&#233; and other named ones stay as written)",
    "repeated_punctuation": "runs of ASCII punctuation are collapsed, runs of other symbols (… or emoji) are not",
}
NOT_EXPRESSIBLE = {"stop_words": "a stop word must be a whole token, which needs variable-length look-behind"}


def _runs(pattern: re.Pattern | regex.Pattern, start: int, stop: int) -> list[tuple[int, int]]:
    """(first, last) code points of the maximal runs in [start, stop) that the one-character `pattern` matches."""
    module = regex if isinstance(pattern, regex.Pattern) else re
    repeated = module.compile(f"(?:{pattern.pattern})+", pattern.flags)
    text = "".join(map(chr, range(start, stop)))
    return [(start + m.start(), start + m.end() - 1) for m in repeated.finditer(text)]


@cache
def char_class(pattern: re.Pattern | regex.Pattern) -> str:
    """The body of an Oniguruma character class holding exactly the code points `pattern` matches in Python."""
    runs = itertools.chain(_runs(pattern, 0, 0xD800), _runs(pattern, 0xE000, 0x110000))  # no surrogates
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in runs)


def _replace(pattern: str, content: str) -> Normalizer:
    return normalizers.Replace(Regex(pattern), content)


def _html() -> list[Normalizer]:
    entities = [normalizers.Replace(entity, html.unescape(entity)) for entity in ENTITIES]
    return [_replace(cleaning.HTML_TAG.pattern, " "), *entities]


def _control_chars() -> list[Normalizer]:
    return [_replace(f"[{char_class(cleaning.LINE_BREAKS)}]", " "), _replace(f"[{char_class(cleaning.CONTROL)}]", "")]


def _urls() -> list[Normalizer]:
    space = char_class(re.compile(r"\s"))
    return [_replace(rf"(?i)(?:https?://|ftp://|www\.)[^{space}]+", " ")]


def _emails() -> list[Normalizer]:
    """EMAIL with Python's \\w spelt out and \\b as the look-arounds it stands for."""
    word = char_class(re.compile(r"\w"))
    edge = f"(?:(?<=[{word}])(?![{word}])|(?<![{word}])(?=[{word}]))"
    return [_replace(rf"{edge}[{word}.+\-]+@[{word}\-]+(?:\.[{word}\-]+)+{edge}", " ")]


def _repeated_punctuation() -> list[Normalizer]:
    ascii_punctuation = [c for c in map(chr, range(128)) if re.fullmatch(r"[^\w\s]", c)]
    return [_replace(f"\\x{{{ord(c):X}}}{{2,}}", c) for c in ascii_punctuation]


def _whitespace() -> list[Normalizer]:
    return [_replace(f"[{char_class(cleaning.WHITESPACE)}]+", " "), normalizers.Strip()]


# CleaningConfig field -> its normalizers (cleaning.STEPS order); stop_words has none.
NORMALIZERS: dict[str, Callable[[], list[Normalizer]]] = {
    "html": _html,
    "unicode_nfkc": lambda: [normalizers.NFKC()],
    "control_chars": _control_chars,
    "urls": _urls,
    "emails": _emails,
    "special_chars": lambda: [_replace(f"[{char_class(cleaning.SPECIAL)}]", "")],
    "repeated_punctuation": _repeated_punctuation,
    "lowercase": lambda: [normalizers.Lowercase()],
    "whitespace": _whitespace,
}


def carried_steps(steps: dict[str, bool]) -> list[str]:
    """The enabled cleaning steps that a normalizer carries (fully or in part), in order."""
    return [name for name in cleaning.STEPS if steps.get(name) and name in NORMALIZERS]


def cleaning_normalizer(steps: dict[str, bool]) -> Normalizer:
    """One Sequence normalizer of the enabled steps that tokenizers can express, in cleaning.STEPS order."""
    return normalizers.Sequence(cleaning_normalizers(steps))


def cleaning_normalizers(steps: dict[str, bool]) -> list[Normalizer]:
    """The normalizers of the enabled steps that tokenizers can express, in cleaning.STEPS order."""
    return [n for name in carried_steps(steps) for n in NORMALIZERS[name]()]


def client_tokenizer(tokenizer: PreTrainedTokenizerBase, steps: dict[str, bool]) -> tuple[PreTrainedTokenizerFast, int]:
    """A generic fast tokenizer (loaded from tokenizer.json as is, by any client) whose normalizer runs the
    expressible cleaning steps before the tokenizer's own normalizer, and how many normalizers it prepended."""
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    cleaning_steps = cleaning_normalizers(steps)
    if cleaning_steps:
        own = [backend.normalizer] if backend.normalizer is not None else []
        backend.normalizer = normalizers.Sequence([*cleaning_steps, *own])
    client = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=tokenizer.model_max_length,
                                     model_input_names=tokenizer.model_input_names, padding_side=tokenizer.padding_side,
                                     truncation_side=tokenizer.truncation_side, **tokenizer.special_tokens_map)
    return client, len(cleaning_steps)


def lab_tokenizer(directory: Path, cleaning_normalizers: int) -> PreTrainedTokenizerBase:
    """The exported tokenizer without its first `cleaning_normalizers` normalizers: the lab cleans with the Python
    steps first, as training did."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if cleaning_normalizers:
        backend = tokenizer.backend_tokenizer
        own = [backend.normalizer[i] for i in range(cleaning_normalizers, len(backend.normalizer))]
        backend.normalizer = normalizers.Sequence(own) if own else None
    return tokenizer
