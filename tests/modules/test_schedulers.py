"""Each schedule YAML builds a per-step schedule whose lr at chosen steps equals the closed form."""

import math

import pytest
import torch

from src.builders import check_buildable
from src.config import available, compose, to_object
from src.errors import ConfigError
from src.modules.schedulers import build_scheduler

TOTAL, WARMUP = 100, 10
SCHEDULES = ["constant", "linear", "exponential", "cosine", "cosine_with_restarts"]


def cosine_decay(progress: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * progress))


def closed_form(name: str, step: int, args: dict) -> float:
    """The lr multiplier after `step` optimizer steps, written independently of src.modules.schedulers."""
    if step < WARMUP:
        return step / WARMUP * closed_form(name, WARMUP, args)
    progress = (step - WARMUP) / (TOTAL - WARMUP)
    floor = args.get("min_lr_rate", 0.0)
    if name == "constant":
        return 1.0
    if name == "linear":
        return 1 - progress
    if name == "exponential":
        return args["gamma"] ** (step - WARMUP)
    if name == "cosine":
        return floor + (1 - floor) * cosine_decay(progress)
    cycles = args["num_cycles"]
    in_cycle = 1.0 if step >= TOTAL else (progress * cycles) % 1.0
    return cosine_decay(in_cycle)


def lr_trace(name: str, *overrides: str) -> tuple[list[float], dict]:
    cfg = compose(["experiment=imdb_tiny", f"scheduler={name}", *overrides])
    check_buildable(cfg)  # what every run does before it builds anything
    sched = to_object(cfg).model.scheduler
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = build_scheduler(optimizer, sched, TOTAL)
    trace = []
    for _ in range(TOTAL + 1):
        trace.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return trace, sched.kwargs()


def test_every_scheduler_yaml_is_covered() -> None:
    assert set(available("scheduler")) == set(SCHEDULES)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("warmup", ["model.scheduler.warmup_steps=10", "model.scheduler.warmup_ratio=0.1"])
def test_lr_at_chosen_steps_equals_closed_form(name: str, warmup: str) -> None:
    trace, args = lr_trace(name, warmup, "model.scheduler.warmup_steps=10" if "ratio" not in warmup
                           else "model.scheduler.warmup_steps=0")
    for step in (0, 3, 10, 25, 54, 55, 56, 77, 99, 100):
        assert trace[step] == pytest.approx(2.0 * closed_form(name, step, args), abs=1e-12), step


def test_cosine_with_restarts_restarts_at_full_lr() -> None:
    trace, _ = lr_trace("cosine_with_restarts", "model.scheduler.warmup_steps=10")
    assert trace[55] == pytest.approx(2.0) and trace[54] < 0.01  # 2 cycles of 45 steps after 10 warm-up


@pytest.mark.parametrize(("name", "arg"), [("exponential", "gamma=0"), ("cosine", "period=3"),
                                           ("cosine_with_restarts", "num_cycles=0")])
def test_bad_scheduler_args_raise_config_error(name: str, arg: str) -> None:
    with pytest.raises(ConfigError, match=f"model.scheduler.{arg.split('=')[0]}"):
        lr_trace(name, f"model.scheduler.{arg}")


def test_a_schedule_without_warmup_refuses_a_warmup() -> None:
    with pytest.raises(ConfigError, match=r"model\.scheduler: constant has no warm-up.*warmup_ratio=0"):
        lr_trace("constant", "model.scheduler.name=constant", "model.scheduler.warmup_ratio=0.1")


def test_a_torch_scheduler_class_is_one_target_away() -> None:
    trace, _ = lr_trace("exponential", "model.scheduler._target_=torch.optim.lr_scheduler.StepLR",
                        "model.scheduler.gamma=0.1", "model.scheduler.step_size=10")
    assert trace[9] == trace[0] == 2.0 and trace[10] == pytest.approx(0.2)
