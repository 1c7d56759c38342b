"""The command line, and only it: every `python -m src.cli.<name>` entry point, and what they share.

- `entry_point`: logging set-up, and user-fixable errors as one log line with exit code 2 (no traceback).
- `parse_args`: the one argument parser. An entry point's own options (`ckpt=...`, `workers=2`) are a dataclass,
  typed and checked by src.config like any config key; everything else is a config override for
  src.config.compose (entry points that take a config) or an error naming the options.
- `print_metrics`: the one metrics table (validation and test) that train and eval print.
- `--help` / `-h` on every entry point: its docstring, its options and, for entry points that take a config, the
  config groups with their choices and every key with its type and default, generated from src/schemas.py.
- `print_config=true` (entry points that compose a run config): the composed config as a rich tree, then exit.

Each entry point logs as `src.cli.<name>` (spelled out: `__name__` is `__main__` under `python -m`).

Library code (everything outside src/cli/) never imports from here; tests/test_architecture.py checks it.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, Field, dataclass, fields, is_dataclass
from typing import Any, NamedTuple

from omegaconf import MISSING as REQUIRED
from omegaconf import DictConfig, OmegaConf

from src.config import CONFIG_DIR, GROUP_KEYS, available, compose, parse_options
from src.errors import ConfigError, LabError
from src.schemas import RunConfig

HELP_FLAGS = ("--help", "-h")


class HelpRequested(Exception):
    """`--help` was given: the entry point prints this text and exits 0."""

Main = Callable[[list[str]], int]


def entry_point(log: logging.Logger, user_errors: tuple[type[Exception], ...] = (LabError,)
                ) -> Callable[[Main], Callable[[list[str] | None], int]]:
    """Decorate `main(args) -> exit code`: args default to sys.argv[1:]; `user_errors` print no traceback."""

    def wrap(body: Main) -> Callable[[list[str] | None], int]:
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> int:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
            logging.getLogger("lightning").propagate = False  # `import lightning` adds its own console handler
            try:
                return body(sys.argv[1:] if argv is None else argv)
            except HelpRequested as text:
                print(f"{(sys.modules[body.__module__].__doc__ or '').strip()}\n\n{text}")
                return 0
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
    if any(item in HELP_FLAGS for item in argv):
        raise HelpRequested(help_text(options, positional, config))
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


@dataclass
class ConfigOptions:
    """An entry point that composes a run config (train, pretrain, data_report)."""

    print_config: bool = False  # print the composed config as a tree and exit


def _type_name(kind: Any) -> str:
    """`int`, `Optional[str]`, `Path | None`: module prefixes dropped."""
    return kind.__name__ if isinstance(kind, type) else re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(kind))


def _default(field: Field) -> Any:
    if field.default is not MISSING:
        return "<required>" if field.default == REQUIRED else field.default
    return field.default_factory() if field.default_factory is not MISSING else "<required>"


def schema_keys(schema: type, prefix: str = "") -> Iterator[str]:
    """`key: type = default` for every leaf of a schema dataclass, nested groups as dotted keys."""
    hints = typing.get_type_hints(schema)
    for field in fields(schema):
        if field.name.startswith("_"):
            continue
        if is_dataclass(hints[field.name]):
            yield from schema_keys(hints[field.name], f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}: {_type_name(hints[field.name])} = {_default(field)}"


def help_text(options: type, positional: str | None, config: bool) -> str:
    """The entry point's options; with `config`, the config groups and their choices and every config key."""
    lines = ["Options (key=value):", *(f"  {key}" for key in schema_keys(options))]
    if positional:
        lines[0] = f"Options (key=value; `{positional}` may be given as a bare word):"
    if not config:
        return "\n".join(lines)
    defaults = OmegaConf.load(CONFIG_DIR / "train.yaml").defaults
    lines += ["", "Config groups (group=<choice>; configs/<group>/<choice>.yaml):",
              f"  experiment: {', '.join(available('experiment'))} (default: none)"]
    lines += [f"  {group}: {', '.join(available(group))} (default: {defaults.get(group)})" for group in GROUP_KEYS]
    lines += ["", "Config keys (key=value; src/schemas.py; groups and experiments set other defaults):",
              *(f"  {key}" for key in schema_keys(RunConfig))]
    return "\n".join(lines)


def composed_run_config(argv: Sequence[str], *defaults: str) -> DictConfig | None:
    """The run config an entry point composes from `defaults` and its arguments; None when `print_config=true` asked
    only to print it (printed here as a tree)."""
    options, overrides = parse_args(argv, ConfigOptions, config=True)
    cfg = compose([*defaults, *overrides])
    if options.print_config:
        print_config_tree(cfg)
        return None
    return cfg


def print_config_tree(cfg: DictConfig) -> None:
    """The composed config as a rich tree: one branch per top-level key, its values as YAML."""
    import yaml
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("CONFIG", guide_style="dim")
    for key, value in OmegaConf.to_container(cfg, resolve=True).items():
        if isinstance(value, dict) and value:
            tree.add(f"[bold]{key}[/bold]").add(Syntax(yaml.safe_dump(value, sort_keys=False).strip(), "yaml"))
        else:
            tree.add(f"[bold]{key}[/bold]: {yaml.safe_dump(value, default_flow_style=True).splitlines()[0]}")
    Console().print(tree)


def print_metrics(summary: dict[str, Any]) -> None:
    """The one metrics table of a run summary: a column per split it has (validation of the selected checkpoint,
    test); Lightning's own tables are switched off (verbose=False)."""
    from rich.console import Console
    from rich.table import Table

    splits = [split for split in ("validation", "test") if summary.get(split)]
    table = Table(title=f"Metrics — {summary.get('experiment', '')}")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    names = sorted({key.partition("/")[2] for split in splits for key in summary[split]})
    prefixes = {"validation": "val/", "test": "test/"}
    for name in names:
        values = [summary[split].get(prefixes[split] + name) for split in splits]
        table.add_row(name, *("" if value is None else f"{value:.4f}" for value in values))
    Console().print(table)
