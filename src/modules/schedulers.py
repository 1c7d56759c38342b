"""Learning-rate schedules, stepped once per optimizer step: a transformers.get_scheduler name (linear, cosine,
cosine_with_restarts, constant_with_warmup, ...) or any `_target_` class or function called with the optimizer,
plus num_warmup_steps / num_training_steps when it takes them. The exponential decay transformers lacks is here.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from src.errors import ConfigError
from src.instantiate import check_signature, close_matches, instantiate, target_signature
from src.schemas import SchedulerConfig
from src.signatures import class_constants, module_dict

if TYPE_CHECKING:  # imported where used: checking a schedule imports neither torch nor transformers
    import torch
    from torch.optim.lr_scheduler import LambdaLR, LRScheduler

KEY = "model.scheduler"
STEPS = ("num_warmup_steps", "num_training_steps")  # what the project passes to a schedule that takes them


def get_exponential_schedule_with_warmup(optimizer: torch.optim.Optimizer, num_warmup_steps: int,
                                         gamma: float = 0.999) -> LambdaLR:
    """Linear warm-up from 0, then lr * gamma ** (optimizer steps since warm-up): per-step ExponentialLR."""
    from torch.optim.lr_scheduler import LambdaLR

    if not 0 < gamma <= 1:
        raise ConfigError(f"{KEY}.gamma={gamma} must be in (0, 1].")

    def multiplier(step: int) -> float:
        return step / num_warmup_steps if step < num_warmup_steps else gamma ** (step - num_warmup_steps)

    return LambdaLR(optimizer, multiplier)


def schedule_functions() -> dict[str, str]:
    """transformers.get_scheduler names -> dotted paths of their functions, read from transformers' source
    (SchedulerType and TYPE_TO_SCHEDULER_FUNCTION); imported from transformers when the source does not say."""
    members = class_constants("transformers.trainer_utils.SchedulerType")
    table = module_dict("transformers.optimization", "TYPE_TO_SCHEDULER_FUNCTION")
    pairs = list(zip(table.keys, table.values, strict=True)) if table else []
    found = {members[k.attr]: f"transformers.optimization.{v.id}" for k, v in pairs
             if isinstance(k, ast.Attribute) and k.attr in members and isinstance(v, ast.Name)}
    if pairs and len(found) == len(pairs):
        return found
    from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION

    return {kind.value: f"{fn.__module__}.{fn.__name__}" for kind, fn in TYPE_TO_SCHEDULER_FUNCTION.items()}


def check_scheduler(cfg: SchedulerConfig) -> None:
    """The schedule exists, its keyword arguments are its function's or class's, and it has warm-up if asked."""
    if cfg.name:
        functions = schedule_functions()
        if cfg.name not in functions:
            raise ConfigError(f"Unknown {KEY}.name '{cfg.name}'.{close_matches(cfg.name, functions)} "
                              f"transformers.get_scheduler names: {', '.join(functions)}.")
        path = functions[cfg.name]
    else:
        path = cfg._target_
    signature = target_signature(path, f"{KEY}.{'name' if cfg.name else '_target_'}")
    check_signature(signature, path.rpartition(".")[2], cfg.kwargs(), KEY, given=["optimizer", *STEPS])
    if (cfg.warmup_steps or cfg.warmup_ratio) and "num_warmup_steps" not in signature.parameters:
        raise ConfigError(f"{KEY}: {cfg.name or cfg._target_} has no warm-up (no num_warmup_steps argument); set "
                          f"{KEY}.warmup_steps=0 and {KEY}.warmup_ratio=0, or pick a schedule with warm-up.")


def resolve_warmup(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    return warmup_steps if warmup_steps > 0 else int(warmup_ratio * total_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int) -> LRScheduler:
    """The configured schedule over `total_steps` optimizer steps, with its warm-up (checked by `check_scheduler`
    before the run is built)."""
    from transformers import get_scheduler

    steps = dict(zip(STEPS, (resolve_warmup(total_steps, cfg.warmup_steps, cfg.warmup_ratio), total_steps),
                     strict=True))
    if cfg.name:
        try:
            return get_scheduler(cfg.name, optimizer, **steps, scheduler_specific_kwargs=cfg.kwargs())
        except ValueError as err:
            raise ConfigError(f"{KEY} ({cfg.name}): {err}") from None
    return instantiate({"_target_": cfg._target_, **cfg.kwargs()}, KEY, optimizer, **steps)
