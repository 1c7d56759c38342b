"""docs/extending.md's recipes work as written: each YAML block, copied into configs/, fits a tiny model."""

import re
import shutil
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import StochasticWeightAveraging
from lightning.pytorch.loggers import TensorBoardLogger

from src import config
from src.config import compose
from tests.training_helpers import configured_fit

RECIPES = re.compile(r"```yaml\n# (configs/\S+\.yaml)\n(.*?)```", re.DOTALL)
TINY = ("experiment=imdb_tiny", "logger=csv", "data.limit_train=64", "data.limit_val=32", "data.max_length=32",
        "data.batch_size=16", "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false")


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A copy of configs/ with every recipe block of docs/extending.md written into it; {path: text}."""
    configs = tmp_path / "configs"
    shutil.copytree(config.CONFIG_DIR, configs)
    found = dict(RECIPES.findall((config.REPO_ROOT / "docs" / "extending.md").read_text()))
    for path, text in found.items():
        (tmp_path / path).write_text(f"# {path}\n{text}")
    monkeypatch.setattr(config, "CONFIG_DIR", configs)
    return found


def test_the_docs_hold_the_three_recipes(recipes: dict[str, str]) -> None:
    assert set(recipes) == {"configs/optimizer/nadam.yaml", "configs/callbacks/swa.yaml",
                            "configs/logger/tensorboard.yaml"}
    shipped = config.REPO_ROOT / "configs" / "logger" / "tensorboard.yaml"
    assert shipped.read_text() == recipes["configs/logger/tensorboard.yaml"]  # the docs show the shipped file


def test_nadam_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    trainer = configured_fit(compose([*TINY, "optimizer=nadam", "trainer.max_steps=2"]), tmp_path / "run")
    (optimizer,) = trainer.optimizers
    assert type(optimizer) is torch.optim.NAdam and trainer.global_step == 2
    decayed = {group["weight_decay"] for group in optimizer.param_groups}
    assert decayed == {0.0, 0.01} and all(g["decoupled_weight_decay"] for g in optimizer.param_groups)
    assert {group["initial_lr"] for group in optimizer.param_groups} == {1e-4}  # nadam.yaml's, not imdb_tiny's


def test_stochastic_weight_averaging_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    trainer = configured_fit(compose([*TINY, "callbacks=swa"]), tmp_path / "run")
    (swa,) = [c for c in trainer.callbacks if isinstance(c, StochasticWeightAveraging)]
    assert swa.n_averaged is not None and int(swa.n_averaged) >= 1  # averaging started in the second epoch


def test_a_callback_is_also_one_command_line_override(recipes: dict[str, str]) -> None:
    cfg = compose([*TINY, "callbacks.swa={_target_: lightning.pytorch.callbacks.StochasticWeightAveraging, "
                          "swa_lrs: 1.0e-5}"])
    assert cfg.callbacks.swa.swa_lrs == 1e-5 and "model_checkpoint" in cfg.callbacks


def test_tensorboard_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trainer = configured_fit(compose([*TINY, "logger=tensorboard", "trainer.max_steps=2"]), run_dir)
    assert any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
