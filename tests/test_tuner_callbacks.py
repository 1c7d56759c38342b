"""Lightning's tuner callbacks, configured like any callback, tune what the run really uses: LearningRateFinder the
optimizer's learning rate (TextClassifier.lr), BatchSizeFinder the train loader's batch size (the datamodule's
batch_size)."""

import math
from collections.abc import Callable
from typing import Any

import pytest
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder
from omegaconf import DictConfig

from src.rundir import load_checkpoint
from src.training import train

QUICK = ("data.limit_train=64", "data.limit_val=32", "data.limit_test=32", "data.max_length=32",
         "trainer.max_epochs=1")


def spy(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, read: Callable[[Any], Any]) -> list[Any]:
    """Record `read(callback)` each time `cls.method` has run."""
    seen, original = [], getattr(cls, method)

    def recorded(self: Any, *args: Any) -> Any:
        result = original(self, *args)
        seen.append(read(self))
        return result

    monkeypatch.setattr(cls, method, recorded)
    return seen


@pytest.mark.slow  # a learning-rate sweep, then a tiny epoch: ~40-60 s on 2 cores
def test_learning_rate_finder_sets_the_learning_rate_the_optimizer_trains_with(make_cfg: Callable[..., DictConfig],
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    suggested = spy(monkeypatch, LearningRateFinder, "lr_find", lambda finder: finder.optimal_lr.suggestion())
    # batch size 2: the sweep runs inside the first epoch (Lightning's), which needs > 11 steps for a suggestion
    cfg = make_cfg(*QUICK, "data.batch_size=2", "callbacks.lr_finder={_target_: "
                   "lightning.pytorch.callbacks.LearningRateFinder, num_training_steps: 15, min_lr: 1.0e-6, "
                   "max_lr: 1.0, early_stop_threshold: null}")
    configured = cfg.model.optimizer.lr
    summary = train(cfg)
    checkpoint = load_checkpoint(f"{summary['run_dir']}/checkpoints/last.ckpt")
    (lr,) = suggested
    assert lr is not None and lr != pytest.approx(configured)
    assert checkpoint["lr_schedulers"][0]["base_lrs"] == pytest.approx([lr] * 2)  # both parameter groups


@pytest.mark.slow  # two one-step trials, then a tiny epoch: ~40-60 s on 2 cores
def test_batch_size_finder_sets_the_batch_size_the_train_loader_uses(make_cfg: Callable[..., DictConfig],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    found = spy(monkeypatch, BatchSizeFinder, "scale_batch_size", lambda finder: finder.optimal_batch_size)
    cfg = make_cfg(*QUICK, "callbacks.batch_size_finder={_target_: lightning.pytorch.callbacks.BatchSizeFinder, "
                           "init_val: 4, max_trials: 2, steps_per_trial: 1}")
    summary = train(cfg)
    batch_size = found[0]  # the fit's search (the finder searches again at the final validate and test)
    assert batch_size == 8 and cfg.data.batch_size == 8  # 4 -> 8, then max_trials ends the search
    assert summary["global_step"] == math.ceil(64 / batch_size)  # one epoch of data.limit_train=64 rows, batches of 8
