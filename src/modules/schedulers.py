"""Learning-rate schedule registry, stepped once per optimizer step.

Each builder returns a LambdaLR multiplier function of the step; warm-up is shared by all of them.
"""

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


def with_warmup(multiplier: Multiplier, warmup_steps: int) -> Multiplier:
    """Ramp linearly from 0 to the schedule's value over the first `warmup_steps` steps."""
    return lambda step: (step / warmup_steps) * multiplier(warmup_steps) if step < warmup_steps else multiplier(step)


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
