"""Trainer presets, precision and gradient accumulation; the training-method experiment presets compose."""

from pathlib import Path

import pytest
import torch

from src import hardware
from src.builders import build_trainer
from src.config import compose, to_object
from src.errors import ConfigError
from tests.training_helpers import quick_fit


def test_cpu_and_ddp_cpu_presets_build_trainers(tmp_path: Path) -> None:
    single = build_trainer(to_object(compose(["experiment=imdb_tiny", "trainer=cpu", "trainer.precision=32-true"])),
                           tmp_path, loggers=[])
    assert single.world_size == 1 and single.precision == "32-true"
    cfg = compose(["experiment=imdb_tiny", "trainer=ddp_cpu"])
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == ("cpu", 2, "ddp")


@pytest.mark.parametrize("preset", ["gpu", "ddp"])
def test_gpu_presets_fail_fast_without_cuda_and_compose_with_it(preset: str, monkeypatch) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            compose([f"trainer={preset}"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(hardware, "_gpu_bf16", lambda: True)
    trainer = compose([f"trainer={preset}"]).trainer
    assert trainer.accelerator == "gpu" and trainer.precision == "bf16-mixed"
    assert trainer.strategy == ("ddp" if preset == "ddp" else "auto")


def test_bad_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="trainer.precision"):
        compose(["trainer.precision=8-mixed"])


def test_bf16_mixed_with_gradient_accumulation_steps_once_per_accumulated_batch(make_cfg) -> None:
    cfg = make_cfg("data.limit_train=128", "data.max_length=32", "data.batch_size=16", "scheduler=linear",
                   "model.scheduler.warmup_ratio=0")
    module = quick_fit(cfg, max_steps=-1, max_epochs=1, precision="bf16-mixed", accumulate_grad_batches=4)
    trainer = module.trainer
    assert trainer.global_step == 2  # 8 batches / 4
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 2
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)  # linear decay ends at step 2


@pytest.mark.parametrize(("experiment", "mode"), [
    ("imdb_bert_frozen", "frozen"), ("imdb_bert_lora", "lora"),
    ("imdb_minilm_frozen", "frozen"), ("imdb_minilm_lora", "lora")])
def test_training_method_experiments_compose(experiment: str, mode: str) -> None:
    cfg = compose([f"experiment={experiment}"])
    assert cfg.model.finetune.mode == mode and cfg.experiment == experiment
    if experiment == "imdb_bert_frozen":
        assert cfg.model.optimizer._target_ == "torch.optim.AdamW" and cfg.model.optimizer.lr == 2e-5
