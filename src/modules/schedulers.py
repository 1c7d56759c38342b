"""Learning-rate schedules, stepped once per optimizer step: a transformers.get_scheduler name (linear, cosine,
cosine_with_restarts, constant_with_warmup, ...) or any `_target_` class or function called with the optimizer,
plus num_warmup_steps / num_training_steps when it takes them. The exponential decay transformers lacks is here.
"""

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers import SchedulerType, get_scheduler
from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION

from src.errors import ConfigError
from src.instantiate import check_arguments, close_matches, instantiate, locate
from src.schemas import SchedulerConfig

KEY = "model.scheduler"
STEPS = ("num_warmup_steps", "num_training_steps")  # what the project passes to a schedule that takes them


def get_exponential_schedule_with_warmup(optimizer: torch.optim.Optimizer, num_warmup_steps: int,
                                         gamma: float = 0.999) -> LambdaLR:
    """Linear warm-up from 0, then lr * gamma ** (optimizer steps since warm-up): per-step ExponentialLR."""
    if not 0 < gamma <= 1:
        raise ConfigError(f"{KEY}.gamma={gamma} must be in (0, 1].")

    def multiplier(step: int) -> float:
        return step / num_warmup_steps if step < num_warmup_steps else gamma ** (step - num_warmup_steps)

    return LambdaLR(optimizer, multiplier)


def schedule_function(name: str) -> Callable[..., Any]:
    """The transformers function behind a get_scheduler name."""
    names = [kind.value for kind in SchedulerType]
    if name not in names:
        raise ConfigError(f"Unknown {KEY}.name '{name}'.{close_matches(name, names)} "
                          f"transformers.get_scheduler names: {', '.join(names)}.")
    return TYPE_TO_SCHEDULER_FUNCTION[SchedulerType(name)]


def check_scheduler(cfg: SchedulerConfig) -> Callable[..., Any]:
    """The schedule's function or class, its keyword arguments checked; warm-up only where it is supported."""
    target = schedule_function(cfg.name) if cfg.name else locate(cfg._target_, f"{KEY}._target_")
    check_arguments(target, cfg.kwargs(), KEY, given=["optimizer", *STEPS])
    if (cfg.warmup_steps or cfg.warmup_ratio) and "num_warmup_steps" not in inspect.signature(target).parameters:
        raise ConfigError(f"{KEY}: {cfg.name or cfg._target_} has no warm-up (no num_warmup_steps argument); set "
                          f"{KEY}.warmup_steps=0 and {KEY}.warmup_ratio=0, or pick a schedule with warm-up.")
    return target


def resolve_warmup(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    return warmup_steps if warmup_steps > 0 else int(warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int) -> LRScheduler:
    """The configured schedule over `total_steps` optimizer steps, with its warm-up."""
    check_scheduler(cfg)
    steps = dict(zip(STEPS, (resolve_warmup(total_steps, cfg.warmup_steps, cfg.warmup_ratio), total_steps),
                     strict=True))
    if cfg.name:
        try:
            return get_scheduler(cfg.name, optimizer, **steps, scheduler_specific_kwargs=cfg.kwargs())
        except ValueError as err:
            raise ConfigError(f"{KEY} ({cfg.name}): {err}") from None
    return instantiate({"_target_": cfg._target_, **cfg.kwargs()}, KEY, optimizer, **steps)
