"""Every YAML under configs/ builds what it names; config errors are fast one-liners that name the key."""

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import wandb
from lightning.pytorch.loggers import CSVLogger

from src import hardware
from src.builders import build_callbacks, build_trainer, check_buildable
from src.config import GROUP_KEYS, REPO_ROOT, available, compose, to_object
from src.designs.design_spec import load_design
from src.errors import ConfigError
from src.loggers import build_loggers
from src.modules.optimizers import build_optimizer
from src.modules.schedulers import build_scheduler
from tests.test_config import fake_finished_run
from tests.training_helpers import fresh_python

GROUP_FILES = [(group, name) for group in GROUP_KEYS for name in available(group)]
GPU_TRAINERS = {"gpu", "ddp"}


@pytest.mark.parametrize(("group", "name"), GROUP_FILES)
def test_every_group_file_composes_and_builds_what_it_names(group: str, name: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    if group == "trainer" and name in GPU_TRAINERS:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # composes; building needs a GPU
        monkeypatch.setattr(hardware, "_gpu_bf16", lambda: True)  # precision auto asks the (absent) GPU
    cfg = compose([f"{group}={name}", "experiment=imdb_tiny"])
    check_buildable(cfg)
    run = to_object(cfg)
    optimizer = build_optimizer(torch.nn.Linear(2, 2), run.model.optimizer)
    build_scheduler(optimizer, run.model.scheduler, total_steps=10)
    assert build_callbacks(run.callbacks, tmp_path)
    loggers = build_loggers(run, tmp_path, "run", {})
    wandb.finish()  # the (disabled) W&B run of logger=wandb must not leak into later tests
    assert isinstance(loggers[0], CSVLogger)
    assert len(loggers) == 1 + run.logger.wandb.enabled + len(run.logger.others())
    if not (group == "trainer" and name in GPU_TRAINERS):
        build_trainer(run, tmp_path, loggers)


@pytest.mark.parametrize("experiment", available("experiment"))
def test_every_experiment_builds_what_it_names(experiment: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # imdb_distill's teacher is the newest finished imdb_minilm run
    fake_finished_run(tmp_path, "imdb_minilm")
    check_buildable(compose([f"experiment={experiment}"]))


@pytest.mark.parametrize("design", available("design"))
def test_every_design_arm_builds_what_it_names(design: str) -> None:
    loaded = load_design(design)
    for run in loaded.runs()[:: len(loaded.spec.seeds)]:
        if run.arm.kind == "train" and not run.arm.needs:
            check_buildable(loaded.compose_run(run))


def _schema_error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as err:
        check_buildable(compose(list(overrides)))
    return str(err.value)


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.optimizer._target_=torch.optim.AdamX"], r"model\.optimizer\._target_: torch\.optim has no 'AdamX'.*Adam"),
    (["model.optimizer._target_=torch.optimm.AdamW"], r"model\.optimizer\._target_: no module 'torch\.optimm'.*optim"),
    (["model.optimizer.betaz=[0.9,0.9]"], r"Unknown argument 'model\.optimizer\.betaz' for AdamW.*betas"),
    (["callbacks.early_stopping.patienc=3"], r"'callbacks\.early_stopping\.patienc' for EarlyStopping.*patience"),
    (["logger=tensorboard", "logger.tensorboard._target_=lightning.pytorch.loggers.TensorBordLogger"],
     r"logger\.tensorboard\._target_: lightning\.pytorch\.loggers has no 'TensorBordLogger'.*TensorBoardLogger"),
    (["trainer.max_epochs=-5"], r"'trainer\.max_epochs': -5 epochs; use a number >= 0, or -1"),
    (["model.dropout=2"], r"'model\.dropout' is a group of keys.*set model\.dropout\.hidden"),
    (["model.dropout.hidden=2"], r"'model\.dropout\.hidden': must be null or in \[0, 1\)"),
    (["data.max_length=100000"], r"'data\.max_length': 100000 tokens exceed the model's 512 positions "
                                 r"\(.*config\.json\); use data\.max_length <= 512"),
    (["experiment=imdb_tiny", "model=tiny_gpt2", "data.max_length=600"],
     r"'data\.max_length': 600 tokens exceed the model's 512 positions \(model\.architecture\)"),
    (["experiment=imdb_tiny", "model.finetune.mode=prompt", "data.max_length=500"],
     r"500 tokens \+ 20 virtual prompt tokens exceed the model's 512 positions"),
    (["scheduler=constant", "model.scheduler.name=constant", "model.scheduler.warmup_ratio=0.1"],
     r"model\.scheduler: constant has no warm-up"),
    (["model.scheduler._target_=torch.optim.lr_scheduler.StepLR"], r"'model\.scheduler': set either name"),
    (["trainer.profiler=simpel"], r"'trainer\.profiler'. Allowed: simple"),
    (["logger.wandbb.enabled=false"], r"'logger\.wandbb' names no _target_.*Did you mean wandb"),
    (["logger=tensorboard", "logger.tensorboard.flush_sec=30"],
     r"'logger\.tensorboard\.flush_sec' for TensorBoardLogger\. Did you mean flush_secs\?.*filename_suffix"),
    (["callbacks.model_checkpoint.monitor=val/f1"],
     r"'callbacks\.model_checkpoint\.monitor': no such metric is logged\. Did you mean val/f1_macro.*val/loss"),
])
def test_config_errors_name_the_key_and_the_fix(overrides: list[str], message: str) -> None:
    assert re.search(message, _schema_error(*overrides))


def test_preset_values_belong_to_the_presets_own_group_choice() -> None:
    assert compose(["experiment=imdb_minilm"]).model.optimizer.lr == 1e-4  # the preset's AdamW lr
    sgd = compose(["experiment=imdb_minilm", "optimizer=sgd"]).model.optimizer
    assert (sgd._target_, sgd.lr) == ("torch.optim.SGD", 1e-2)  # sgd.yaml's lr, not the preset's
    assert compose(["experiment=imdb_minilm", "optimizer=sgd", "model.optimizer.lr=0.5"]).model.optimizer.lr == 0.5
    assert compose(["experiment=imdb_minilm", "optimizer=adamw"]).model.optimizer.lr == 1e-4  # its own choice
    sst2 = compose(["experiment=imdb_minilm", "data=sst2"])  # the preset's data values were for imdb
    assert (sst2.data.name, sst2.data.max_length, sst2.data.limit_train) == ("sst2", 64, None)
    tiny = compose(["experiment=imdb_minilm_lora", "model=tiny_bert"])
    assert tiny.model.finetune.mode == "full" and tiny.model.optimizer.lr == 5e-4  # optimizer choice unchanged


def test_debug_group_applies_after_the_preset() -> None:
    cfg = compose(["experiment=imdb_minilm", "debug=overfit"])
    assert cfg.trainer.overfit_batches == 4 and cfg.trainer.max_epochs == 40  # the preset says 1 epoch
    assert cfg.callbacks.early_stopping is None and cfg.choices.debug == "overfit"


def test_compose_and_validate_import_no_torch_transformers_datasets_or_lightning() -> None:
    done = fresh_python(
        "import sys\n"
        "from src.config import compose\n"
        "for overrides in ([], ['experiment=imdb_tiny', 'debug=profiler', 'logger=mlflow', 'scheduler=exponential']):\n"
        "    compose(overrides)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'datasets', 'lightning'}))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _entry_point(override: str) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m src.cli.train <override>` and the CPU seconds it took: the suite runs niced next to training jobs,
    where wall time measures the scheduler (`time` at normal priority: docs/configuration.md)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "src.cli.train", override], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.parametrize(("override", "key"), [
    ("trainer.max_epochs=-5", "trainer.max_epochs"), ("model.dropout=2", "model.dropout"),
    ("data.max_length=100000", "data.max_length"), ("trainer.max_epoch=3", "trainer.max_epoch"),
    ("callbacks.model_checkpoint.monitr=x", "callbacks.model_checkpoint.monitr"),
    ("model.scheduler.num_cyclez=2", "model.scheduler.num_cyclez"),
    ("model.optimizer.betaz=[0.9,0.9]", "model.optimizer.betaz"),
    ("callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpointt", "ModelCheckpoint"),
    ("model.name_or_path=${package_model:no_such_pkg}", "No installed model package 'no_such_pkg'"),
    ("trainer.min_epoch=2", "'trainer.min_epoch' for lightning.Trainer. Did you mean min_epochs"),
])
def test_the_entry_point_reports_a_config_error_in_one_line_within_3_seconds(override: str, key: str) -> None:
    done, elapsed = _entry_point(override)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and key in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert elapsed < 3.0, f"{override}: {elapsed:.1f} s"


def test_a_bad_class_argument_is_reported_before_any_data_or_model_work() -> None:
    done, _ = _entry_point("model.optimizer.betaz=[0.9,0.9]")  # read from torch.optim's source: nothing imported
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "'model.optimizer.betaz' for AdamW. Did you mean betas?" in done.stderr


def test_any_lightning_trainer_keyword_passes_through_to_the_trainer(tmp_path: Path) -> None:
    cfg = compose(["experiment=imdb_tiny", "trainer.min_epochs=2", "trainer.gradient_clip_val=0.5",
                   "trainer.gradient_clip_algorithm=value", "trainer.max_time=00:01:00:00"])
    trainer = build_trainer(to_object(cfg), tmp_path, [])
    assert trainer.fit_loop.min_epochs == 2 and trainer.gradient_clip_algorithm == "value"
    assert trainer.fit_loop.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.min_epoch=2", r"Unknown argument 'trainer\.min_epoch' for lightning\.Trainer\. Did you mean min_epochs"),
    ("trainer.callbacks=[]", r"'trainer\.callbacks': the lab sets it; use the callbacks group"),
    ("trainer.default_root_dir=x", r"'trainer\.default_root_dir': the lab sets it; use run_dir="),
])
def test_a_trainer_keyword_lightning_lacks_or_the_lab_sets_is_refused_with_the_allowed_names(override: str,
                                                                                             message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        compose(["experiment=imdb_tiny", override])
    assert "min_epochs" in str(err.value) or "the lab sets it" in str(err.value)
    assert "default_root_dir" not in str(err.value).partition("Arguments:")[2]
