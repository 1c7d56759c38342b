"""Checks on a composed config that types alone cannot express.

`validate_run_config` (called by `src.config.compose`) needs no torch, transformers, datasets or lightning, so a
bad value is reported in well under a second. `src.builders.check_buildable` then checks every `_target_`
class and registered name before any data or model is loaded.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from src.errors import ConfigError
from src.instantiate import TARGET, check_signature, close_matches, is_spec, target_signature
from src.schemas import EVAL_METRICS, TRAIN_METRICS, RunConfig
from src.seeds import SEED_LIMIT

# Lightning precision flags a config may set (16-mixed falls back to bf16-mixed on CPU, with a warning); auto is
# resolved by src.hardware.choose_precision when the run starts.
PRECISIONS = ["auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true"]
PROFILERS = ["simple", "advanced", "pytorch", "xla"]  # Lightning's Trainer(profiler=<name>) shorthands
TRAINER = "lightning.Trainer"
COMPARISONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
# The least value of callback keywords that Lightning checks only when the callback is built or first used (after
# torch and Lightning are imported), by keyword name: ModelCheckpoint, EarlyStopping, ThroughputMonitor and kin.
CALLBACK_MINIMUMS = {"save_top_k": -1, "every_n_train_steps": 0, "every_n_epochs": 0, "patience": 0,
                     "window_size": 2, "every_minutes": 0}
# Trainer keywords that src.training passes itself, and where a config sets what they hold instead.
SET_BY_LAB = {"default_root_dir": "run_dir=<directory>", "logger": "the logger group (logger.<name>={_target_: ...})",
              "callbacks": "the callbacks group (callbacks.<name>={_target_: ...})",
              "plugins": "nothing (the lab passes its atomic checkpoint writer)"}


def require_choice(key: str, value: object, allowed: Iterable[object]) -> None:
    """Fail with the key and the allowed values when `value` is not one of them."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"Bad value {value!r} for '{key}'. Allowed: {', '.join(map(str, allowed))}.")


def require(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(f"Bad value for '{key}': {problem}.")


def validate_run_config(cfg: DictConfig) -> None:
    """Validate every group without importing torch, transformers, datasets or lightning."""
    require(0 <= cfg.seed < SEED_LIMIT, "seed",
            f"{cfg.seed} is out of range: use an integer in [0, 2**32) (one 32-bit word of every random stream)")
    validate_fields(cfg, RunConfig)
    _validate_data(cfg.data)
    _validate_model(cfg.model)
    _validate_positions(cfg.model, cfg.data.max_length)
    _validate_trainer(cfg.trainer)
    _validate_compression(cfg.model)
    _validate_specs(cfg.callbacks, "callbacks", "callback")
    _validate_monitors(cfg.callbacks, list(cfg.data.label_names))
    _validate_callback_ranges(cfg.callbacks)
    _validate_specs({k: v for k, v in cfg.logger.items() if k != "wandb"}, "logger", "logger", ["wandb"])


def validate_fields(node: DictConfig, schema: type, prefix: str = "") -> None:
    """The `within` intervals and `one_of` choices that src/schemas.py declares on its fields, every group walked."""
    for spec in fields(schema):
        key = f"{prefix}{spec.name}"
        if "one_of" in spec.metadata:
            require_choice(key, node[spec.name], spec.metadata["one_of"])
        elif "within" in spec.metadata:
            interval = spec.metadata["within"]
            bound = interval if interval[0] in "<>" else f"in {interval}"
            require(in_interval(node[spec.name], interval), key,
                    f"must be {'null or ' if spec.default is None else ''}{bound}")
        elif is_dataclass(spec.type):
            validate_fields(node[spec.name], spec.type, f"{key}.")


def in_interval(value: float | None, interval: str) -> bool:
    """Null, or a number inside `interval` ("> 0", ">= 1", "(0, 1]", "[0, 1)", ...)."""
    if value is None:
        return True
    if interval[0] in "<>":
        op, bound = interval.split()
        return COMPARISONS[op](value, float(bound))
    low, high = (float(bound) for bound in interval[1:-1].split(","))
    return ((low < value) if interval[0] == "(" else (low <= value)) and \
        ((value < high) if interval[-1] == ")" else (value <= high))


def _validate_specs(specs: Mapping[str, Any], key: str, kind: str, fixed: Iterable[str] = ()) -> None:
    """Every entry is a `_target_` spec (or null: switched off); a name without one is probably a typo."""
    for name, spec in specs.items():
        if spec is not None and not is_spec(spec):
            known = [*fixed, *(n for n, s in specs.items() if is_spec(s))]
            raise ConfigError(f"'{key}.{name}' names no {TARGET} (the {kind} class to build)."
                              f"{close_matches(name, known)} Configured: {', '.join(known)}.")


def monitorable_metrics(label_names: list[str]) -> list[str]:
    """The metrics a run logs that a callback can monitor: validation ones (per class too) and training ones."""
    return [*(f"val/{name}" for name in EVAL_METRICS), *(f"val/f1_per_class/{label}" for label in label_names),
            *(f"train/{name}" for name in TRAIN_METRICS)]


def _validate_callback_ranges(callbacks: Mapping[str, Any]) -> None:
    """Callback keywords named in CALLBACK_MINIMUMS are numbers at or above their least value (or null)."""
    for name, spec in callbacks.items():
        for key, least in CALLBACK_MINIMUMS.items():
            value = spec.get(key) if is_spec(spec) else None
            require(_at_least(value, least), f"callbacks.{name}.{key}", f"a number >= {least}")


def _validate_monitors(callbacks: Mapping[str, Any], label_names: list[str]) -> None:
    """A callback's `monitor` names a metric the run logs (else Lightning fails after the first epoch)."""
    allowed = monitorable_metrics(label_names)
    for name, spec in callbacks.items():
        monitor = spec.get("monitor") if is_spec(spec) else None
        if monitor is not None and monitor not in allowed:
            raise ConfigError(f"Bad value {monitor!r} for 'callbacks.{name}.monitor': no such metric is logged."
                              f"{close_matches(monitor, allowed)} Metrics: {', '.join(allowed)}.")


def _validate_compression(model: DictConfig) -> None:
    """Checkpoints that distillation / init_checkpoint need exist; distillation weights are in range."""
    kd = model.distillation
    try:
        teacher = kd.teacher_ckpt
    except InterpolationResolutionError as err:  # e.g. ${latest_checkpoint:...} found no finished run
        raise ConfigError(f"model.distillation.teacher_ckpt: {err.__cause__ or err}") from None
    for key, path in (("model.distillation.teacher_ckpt", teacher),
                      ("model.init_checkpoint", model.init_checkpoint)):
        require(path is None or Path(path).is_file(), key, f"checkpoint {path} does not exist")
    require(all(i >= 0 for i in kd.student_layers), "model.distillation.student_layers",
            "must be layer indices")


def _validate_data(data: DictConfig) -> None:
    _validate_text_columns(list(data.text_columns), data.label_column)
    require(len(data.label_names) >= 2, "data.label_names", "needs at least two classes")
    repeated = sorted({name for name in data.label_names if list(data.label_names).count(name) > 1})
    require(not repeated, "data.label_names", f"{', '.join(repeated)} named twice: give every class its own name")
    fractions = data.train_class_fractions
    require(fractions is None or (len(fractions) == len(data.label_names) and all(0 < f <= 1 for f in fractions)),
            "data.train_class_fractions", "needs one share in (0, 1] per class in data.label_names")
    _validate_pipeline(data)


def _validate_text_columns(columns: list[str], label_column: str) -> None:
    """One text column, or two distinct ones for a text pair; none empty and none the label column."""
    fix = "use data.text_columns=[text] for single texts or data.text_columns=[premise,hypothesis] for text pairs"
    require(len(columns) in (1, 2), "data.text_columns", f"{columns} names {len(columns)} columns; {fix}")
    require(all(column.strip() for column in columns), "data.text_columns", f"{columns} has an empty name; {fix}")
    require(len(set(columns)) == len(columns), "data.text_columns", f"{columns} names one column twice; {fix}")
    require(label_column not in columns, "data.text_columns",
            f"'{label_column}' is data.label_column; name the text column(s) apart from the label column")


def _validate_pipeline(data: DictConfig) -> None:
    """Ranges of data.augmentation / data.balancing (their registered names are checked by check_buildable)."""
    aug = data.augmentation
    for name, p in aug.ops.items():
        require(0.0 <= p <= 1.0, f"data.augmentation.ops.{name}", "a probability in [0, 1]")
    require(aug.mode == "none" or any(p > 0 for p in aug.ops.values()), "data.augmentation.ops",
            f"augmentation.mode={aug.mode} needs at least one operation with p > 0")
    require(not (data.balancing.strategy == "weighted_sampler" and data.group_by_length),
            "data.group_by_length", "length grouping and balancing.strategy=weighted_sampler both choose "
            "the train order; set data.group_by_length=false")


def _validate_model(model: DictConfig) -> None:
    scheduler = model.scheduler
    require((scheduler.name is None) != (scheduler[TARGET] is None), "model.scheduler",
            "set either name (a transformers.get_scheduler name) or _target_ (a class or function), not both")
    require(scheduler.get("num_cycles", 1) > 0, "model.scheduler.num_cycles", "must be positive")
    require(model.pretrained or bool(model.architecture), "model.architecture",
            "a random-init model (pretrained=false) needs architecture.model_type and sizes")
    _validate_adapters(model.finetune)
    _validate_shape(model)


def _validate_adapters(finetune: DictConfig) -> None:
    """Ranges of the LoRA, AdaLoRA and prompt-tuning settings (peft checks them only when the model is built)."""
    lora, adalora = finetune.lora, finetune.adalora
    require(1 <= adalora.target_r <= lora.r or finetune.mode != "adalora", "model.finetune.adalora.target_r",
            f"a rank in [1, model.finetune.lora.r={lora.r}] (AdaLoRA starts at lora.r and prunes down to it)")


def _validate_shape(model: DictConfig) -> None:
    """The model's layer and head counts fit (model.architecture over the pretrained config.json, when known)."""
    config = {**(_hub_config(model.name_or_path) if model.pretrained else {}), **model.architecture}
    names = [("num_hidden_layers", "hidden_size", "num_attention_heads"), ("n_layer", "n_embd", "n_head")]
    for layers, width, heads in names:
        if config.get(layers) is not None:
            require(config[layers] >= 1, f"model.architecture.{layers}", "must be >= 1")
            require(model.finetune.frozen_layers <= config[layers], "model.finetune.frozen_layers",
                    f"{model.finetune.frozen_layers} frozen layers but the model has {config[layers]}")
        if config.get(width) is not None and config.get(heads):
            require(config[width] % config[heads] == 0, f"model.architecture.{width}",
                    f"{config[width]} is not divisible by {heads}={config[heads]} (each head gets "
                    f"{width} / {heads} dimensions)")


def max_positions(model: DictConfig) -> tuple[int | None, str]:
    """(position embeddings of the model, where that number comes from), read before any weights load:
    model.architecture for random-init models, else the config.json of the model's directory or Hub cache."""
    if not model.pretrained:
        config, source = model.architecture, "model.architecture"
    else:
        config, source = _hub_config(model.name_or_path), f"{model.name_or_path}/config.json"
    found = [config[key] for key in ("max_position_embeddings", "n_positions") if config.get(key)]
    return (int(found[0]) if found else None), source


def _hub_config(name_or_path: str) -> dict[str, Any]:
    """A model's config.json from its directory or the local Hub cache; {} when neither has it."""
    local = Path(name_or_path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    from huggingface_hub import try_to_load_from_cache  # no torch; only for Hub names

    try:
        cached = try_to_load_from_cache(name_or_path, "config.json")
    except ValueError:  # not a valid repo id
        return {}
    return json.loads(Path(cached).read_text()) if isinstance(cached, str) else {}


def _validate_positions(model: DictConfig, max_length: int) -> None:
    """Tokens per sequence (+ prompt-tuning's virtual tokens) fit the model's position embeddings."""
    positions, source = max_positions(model)
    virtual = model.finetune.prompt.num_virtual_tokens if model.finetune.mode == "prompt" else 0
    if positions is not None and max_length + virtual > positions:
        extra = f" + {virtual} virtual prompt tokens" if virtual else ""
        raise ConfigError(f"Bad value for 'data.max_length': {max_length} tokens{extra} exceed the model's "
                          f"{positions} positions ({source}); use data.max_length <= {positions - virtual}.")


def _validate_trainer_keywords(trainer: DictConfig) -> None:
    """Every `trainer.*` key is a keyword of lightning.Trainer (its signature read from source: no import) that
    the lab does not pass itself."""
    for key, instead in SET_BY_LAB.items():
        require(key not in trainer, f"trainer.{key}", f"the lab sets it; use {instead}")
    signature = target_signature(TRAINER, "trainer")
    settable = [p for p in signature.parameters.values() if p.name not in SET_BY_LAB]
    check_signature(signature.replace(parameters=settable), "lightning.Trainer", list(trainer), "trainer")


def _validate_trainer(trainer: DictConfig) -> None:
    _validate_trainer_keywords(trainer)
    require_choice("trainer.accelerator", trainer.accelerator, ["cpu", "gpu", "cuda", "mps", "auto"])
    require(trainer.precision != "16-true", "trainer.precision",
            "16-true keeps weights and AdamW's state in fp16, where its eps (1e-8) underflows and the loss turns NaN; "
            "use bf16-true (the same memory, fp32's range), bf16-mixed or 16-mixed on a GPU")
    require_choice("trainer.precision", trainer.precision, PRECISIONS)
    require(trainer.precision != "16-mixed" or trainer.accelerator in ("gpu", "cuda", "auto"), "trainer.precision",
            "16-mixed (fp16 autocast) needs a CUDA GPU; on a CPU use bf16-mixed, 32-true or auto")
    require(trainer.max_epochs >= -1, "trainer.max_epochs", f"{trainer.max_epochs} epochs; use a number >= 0, "
            "or -1 for no epoch limit (then trainer.max_steps ends the run)")
    require(trainer.max_steps >= -1, "trainer.max_steps", "use a number of optimizer steps >= 0, or -1 for no limit")
    require(trainer.max_epochs != -1 or trainer.max_steps > 0, "trainer.max_steps",
            "trainer.max_epochs=-1 needs a step limit (trainer.max_steps > 0)")
    require(trainer.devices not in (0, "0"), "trainer.devices", "a device count >= 1, -1 for all, a list or auto")
    require(trainer.num_sanity_val_steps >= -1, "trainer.num_sanity_val_steps", "a batch count >= 0, or -1 for all")
    algorithm = trainer.get("gradient_clip_algorithm")
    require(algorithm is None or str(algorithm).lower() in ("norm", "value"), "trainer.gradient_clip_algorithm",
            "norm or value")
    for key in ("min_epochs", "min_steps"):  # passed through untyped (schemas.TrainerConfig is open)
        require(_at_least(trainer.get(key), 0), f"trainer.{key}", "null or a number >= 0")
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "overfit_batches"):
        require(_share_or_count(trainer[key]), f"trainer.{key}", "a share in [0, 1] or a whole number of batches")
    require(trainer.val_check_interval is None or (trainer.val_check_interval > 0
                                                   and _share_or_count(trainer.val_check_interval)),
            "trainer.val_check_interval", "a share of the epoch in (0, 1] or a whole number of batches")
    profiler = trainer.profiler
    if isinstance(profiler, str):
        require_choice("trainer.profiler", profiler, PROFILERS)
    else:
        require(profiler is None or is_spec(profiler), "trainer.profiler",
                f"a profiler name ({', '.join(PROFILERS)}) or {{{TARGET}: <profiler class>, ...}}")
    if trainer.accelerator in ("gpu", "cuda"):
        _require_cuda(trainer.accelerator)


def is_number(value: object) -> bool:
    """An int or a float, not a bool (which Python counts as an int) or a string."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _at_least(value: object, least: float) -> bool:
    """Null, or a number >= `least`."""
    return value is None or (is_number(value) and value >= least)


def _share_or_count(value: float | None) -> bool:
    """Lightning's limit_*_batches / overfit_batches / val_check_interval: null, a share in [0, 1] or a count."""
    return value is None or 0 <= value <= 1 or (value > 1 and float(value).is_integer())


def _require_cuda(accelerator: str) -> None:
    import torch  # only a GPU run asks, and it needs torch anyway

    if not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} but this machine has no CUDA GPU. "
                          "Use trainer=cpu (or trainer=ddp_cpu to test DDP with CPU processes).")
