"""Errors a user can fix; each message names the problem and the way out."""


class LabError(Exception):
    """Base class: caught by the entry points and printed without a traceback."""


class ConfigError(LabError, ValueError):
    """A config key or value is wrong; the message names the key and the allowed values."""


class DataError(LabError, ValueError):
    """The data is missing or malformed (path, column, empty split, label out of range)."""


class HubUnreachableError(LabError, OSError):
    """A model or dataset must come from the Hugging Face Hub, which cannot be reached."""


class InputTextError(DataError):
    """Raw text given to `make predict` is unusable."""


class EmptyTextError(InputTextError):
    """An input line or row is empty (or becomes empty after the run's cleaning)."""


class MissingColumnError(InputTextError):
    """A CSV / JSONL / Parquet input has no column of the requested name."""


class UnreadableInputError(InputTextError):
    """An input file is missing, in an unsupported format, or cannot be parsed."""


class NonFiniteLossError(LabError, ArithmeticError):
    """The training loss became NaN or infinite; the message names the step and the likely causes."""
