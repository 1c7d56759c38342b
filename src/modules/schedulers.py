"""Learning-rate schedule registry, stepped once per optimizer step.

Each builder returns a LambdaLR multiplier function of the step; warm-up is shared by all of them.
Written as multipliers rather than chained torch schedulers (SequentialLR) so that one warm-up wrapper
serves every schedule and the value at any step is a closed form the tests can check.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from src.errors import ConfigError
from src.registry import Registry

SCHEDULERS = Registry("scheduler")

Multiplier = Callable[[int], float]


@SCHEDULERS.register("constant")
def constant(total_steps: int, warmup_steps: int) -> Multiplier:
    return lambda step: 1.0


@SCHEDULERS.register("linear")
def linear(total_steps: int, warmup_steps: int) -> Multiplier:
    decay_steps = max(1, total_steps - warmup_steps)
    return lambda step: max(0.0, (total_steps - step) / decay_steps)


@SCHEDULERS.register("exponential")
def exponential(total_steps: int, warmup_steps: int, gamma: float = 0.999) -> Multiplier:
    """lr * gamma ** (steps since warm-up ended), the per-step form of ExponentialLR."""
    if not 0 < gamma <= 1:
        raise ConfigError(f"model.scheduler.args.gamma={gamma} must be in (0, 1].")
    return lambda step: gamma ** max(0, step - warmup_steps)


@SCHEDULERS.register("cosine")
def cosine(total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0) -> Multiplier:
    """Half a cosine from lr down to min_lr_ratio * lr at the last step (SGDR without restarts)."""
    decay_steps = max(1, total_steps - warmup_steps)

    def multiplier(step: int) -> float:
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


@SCHEDULERS.register("cosine_with_restarts")
def cosine_with_restarts(total_steps: int, warmup_steps: int, num_cycles: int = 2,
                         min_lr_ratio: float = 0.0) -> Multiplier:
    """`num_cycles` equal cosine decays after warm-up, each restarting at the full lr (SGDR)."""
    if num_cycles < 1:
        raise ConfigError(f"model.scheduler.args.num_cycles={num_cycles} must be >= 1.")
    cycle_steps = max(1, total_steps - warmup_steps) / num_cycles

    def multiplier(step: int) -> float:
        progress = ((step - warmup_steps) % cycle_steps) / cycle_steps if step < total_steps else 1.0
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


def with_warmup(multiplier: Multiplier, warmup_steps: int) -> Multiplier:
    """Ramp linearly from 0 to the schedule's value over the first `warmup_steps` steps."""
    def warmed(step: int) -> float:
        return step / warmup_steps * multiplier(warmup_steps) if step < warmup_steps else multiplier(step)

    return warmed


def resolve_warmup(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    return warmup_steps if warmup_steps > 0 else int(warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, total_steps: int, warmup_steps: int,
                    warmup_ratio: float, args: dict[str, Any]) -> LambdaLR:
    """Build the registered schedule `name` as a LambdaLR with warm-up."""
    warmup = resolve_warmup(total_steps, warmup_steps, warmup_ratio)
    try:
        multiplier = SCHEDULERS.get_builder(name)(total_steps=total_steps, warmup_steps=warmup, **args)
    except TypeError as err:
        raise ConfigError(f"Bad model.scheduler.args for '{name}': {err}") from None
    return LambdaLR(optimizer, with_warmup(multiplier, warmup))
