"""The command line, and only it: every `python -m src.cli.<name>` entry point, and what they share.

- `entry_point`: logging set-up, and user-fixable errors as one log line with exit code 2 (no traceback).
- `parse_args`: the one argument parser. An entry point's own options (`ckpt=...`, `workers=2`) are a dataclass,
  typed and checked by src.config like any config key; everything else is a config override for
  src.config.compose (entry points that take a config) or an error naming the options.
- `print_metrics`: the test-metrics table that train and eval print.

Each entry point logs as `src.cli.<name>` (spelled out: `__name__` is `__main__` under `python -m`).

Library code (everything outside src/cli/) never imports from here; tests/test_architecture.py checks it.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, NamedTuple

from omegaconf import MISSING as REQUIRED

from src.config import parse_options
from src.errors import ConfigError, LabError

Main = Callable[[list[str]], int]


def entry_point(log: logging.Logger, user_errors: tuple[type[Exception], ...] = (LabError,)
                ) -> Callable[[Main], Callable[[list[str] | None], int]]:
    """Decorate `main(args) -> exit code`: args default to sys.argv[1:]; `user_errors` print no traceback."""

    def wrap(body: Main) -> Callable[[list[str] | None], int]:
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> int:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
            try:
                return body(sys.argv[1:] if argv is None else argv)
            except user_errors as err:
                log.error("%s", err)
                return 2

        return main

    return wrap


@dataclass
class NoOptions:
    """An entry point that takes only config overrides (train, pretrain, data_report)."""


class Parsed(NamedTuple):
    options: Any  # the entry point's options dataclass, filled in
    overrides: list[str]  # key=value config overrides, for src.config.compose


def parse_args(argv: Sequence[str], options: type = NoOptions, *, positional: str | None = None,
               config: bool = False) -> Parsed:
    """Split `argv` into the `options` dataclass (a bare word fills `positional`) and config overrides
    (allowed only when the entry point takes a `config`; src.config.compose checks them)."""
    own = {f.name for f in fields(options)}
    mine, rest = [], []
    for item in argv:
        key, sep, _ = item.partition("=")
        if not sep and positional and not any(m.startswith(f"{positional}=") for m in mine):
            mine.append(f"{positional}={item}")
        elif key in own:
            mine.append(item)
        else:
            rest.append(item)
    if rest and not config:
        raise ConfigError(f"Unknown argument(s) {', '.join(rest)}. {usage(options, positional)}")
    return Parsed(parse_options(options, mine, usage(options, positional)), rest)


def usage(options: type, positional: str | None = None) -> str:
    """The options of an entry point, each with its default ('required' when it has none)."""
    def shown(field: Any) -> str:
        default = "<required>" if field.default in (MISSING, REQUIRED) else field.default
        return f"<{field.name}>" if field.name == positional else f"{field.name}={default}"

    return f"Arguments: {' '.join(shown(f) for f in fields(options))}."


def print_metrics(summary: dict[str, Any]) -> None:
    """The test metrics of a run summary as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Test metrics — {summary.get('experiment', '')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(summary["test"].items()):
        table.add_row(key, f"{value:.4f}")
    Console().print(table)
