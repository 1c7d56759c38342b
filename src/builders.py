"""The one way to build a run's parts from its composed config: tokenizer (once), data module, model and Trainer.

Train, eval, pretrain, the designs runner (through src.training) and benchmarks/bench.py build with these. The
model and the data module are the classes `model._target_` and `data._target_` name, built by src.instantiate like
every other family: a model class is called with (model_cfg, label_names, tokenizer=, class_weights=), a data module
class with (data_cfg, tokenizer, seed=). torch, transformers and lightning are imported inside the functions, so
`check_buildable` runs before any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from src.config import to_object
from src.errors import ConfigError
from src.instantiate import TARGET, check_spec, instantiate, is_spec
from src.modules.schedulers import check_scheduler
from src.schemas import RunConfig, TrainerConfig

if TYPE_CHECKING:
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from transformers import PreTrainedTokenizerBase

DEFAULT_MODEL = "src.modules.text_classifier.TextClassifier"
# model.distillation.teacher_ckpt turns the default model into its distilling subclass (designs set only the teacher)
DISTILLATION_MODEL = "src.modules.distillation.DistillationClassifier"
MODEL_ARGUMENTS = ("model_cfg", "label_names")  # what build_model passes every model class
DATA_ARGUMENTS = ("data_cfg", "tokenizer")  # what build_datamodule passes every data module class


def check_buildable(cfg: DictConfig) -> None:
    """Check every `_target_` against its class signature and every registered name before any data or model is
    loaded: signatures read from source where src.signatures can (nothing imported), else imported."""
    run = to_object(cfg)
    check_spec({TARGET: model_target(cfg)}, "model", given=MODEL_ARGUMENTS)
    check_spec({TARGET: run.data._target_}, "data", given=DATA_ARGUMENTS)
    check_spec(run.model.optimizer.target_spec(), "model.optimizer", given=["params"])
    check_scheduler(run.model.scheduler)
    for name, spec in run.callbacks.items():
        if spec is not None:
            check_spec(spec, f"callbacks.{name}", given=["run_dir", "dirpath"])
    for name, spec in run.logger.others().items():
        if spec is not None:
            check_spec(spec, f"logger.{name}", given=["save_dir"])
    if is_spec(run.trainer.profiler):
        check_spec(run.trainer.profiler, "trainer.profiler", given=["dirpath"])
    _check_registered(cfg.data)


def _check_registered(data: DictConfig) -> None:
    """Augmentation operations and the balancing strategy are registered (project registries)."""
    from src.datamodules.augmentation import AUGMENTATIONS
    from src.datamodules.balancing import BALANCERS

    for name in OmegaConf.to_container(data.augmentation.ops):
        AUGMENTATIONS.check(name, key=f"data.augmentation.ops.{name}")
    BALANCERS.check(data.balancing.strategy, key="data.balancing.strategy")


def model_target(cfg: DictConfig) -> str:
    """The LightningModule class the run trains: `model._target_` (distilling when a teacher is set)."""
    target = cfg.model[TARGET]
    return DISTILLATION_MODEL if target == DEFAULT_MODEL and cfg.model.distillation.teacher_ckpt else target


def build_tokenizer(cfg: DictConfig) -> PreTrainedTokenizerBase:
    """The model's fast tokenizer, loaded once per run and handed to the data module and the model."""
    from src.modules.model_builder import load_tokenizer

    return load_tokenizer(cfg.model)


def build_datamodule(cfg: DictConfig, tokenizer: PreTrainedTokenizerBase | None) -> L.LightningDataModule:
    """The `data._target_` data module over `data.*`, seeded with the run's seed."""
    return instantiate({TARGET: cfg.data[TARGET]}, "data", cfg.data, tokenizer, seed=cfg.seed)


def build_model(cfg: DictConfig, tokenizer: PreTrainedTokenizerBase | None = None,
                class_weights: list[float] | None = None) -> L.LightningModule:
    """The run's LightningModule (`model_target`) over the resolved `model.*` and the data's label names, started
    from `model.init_checkpoint`'s weights when one is given."""
    from src.rundir import load_checkpoint

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    module = instantiate({TARGET: model_target(cfg)}, "model", model_cfg, list(cfg.data.label_names),
                         tokenizer=tokenizer, class_weights=class_weights)
    if cfg.model.init_checkpoint:
        try:
            module.load_state_dict(load_checkpoint(cfg.model.init_checkpoint)["state_dict"])
        except RuntimeError as err:
            raise ConfigError(f"model.init_checkpoint={cfg.model.init_checkpoint} does not fit this model "
                              f"(same model group and fine-tuning mode needed): {str(err)[:300]}") from None
    return module


def build_callbacks(specs: Mapping[str, Any], run_dir: Path) -> list[Callback]:
    """Every configured callback in config order (null entries are off); a class that takes `dirpath` gets the
    run's checkpoints directory, one that takes `run_dir` the run directory."""
    return [instantiate(spec, f"callbacks.{name}", run_dir=run_dir, dirpath=run_dir / "checkpoints")
            for name, spec in specs.items() if spec is not None]


def trainer_arguments(trainer: TrainerConfig, run_dir: Path) -> dict[str, Any]:
    """Keyword arguments of lightning.Trainer from `trainer.*` (null ones left to Lightning), the profiler built."""
    kwargs = {key: value for key, value in vars(trainer).items() if value is not None}
    if isinstance(trainer.profiler, Mapping):
        kwargs["profiler"] = instantiate(trainer.profiler, "trainer.profiler", dirpath=run_dir)
    return kwargs


def build_trainer(run: RunConfig, root: Path, loggers: Any = False, extra: Sequence[Callback] = (),
                  configured: bool = True, **settings: Any) -> L.Trainer:
    """The Trainer of `trainer.*` (`settings` over it) in `root`. `configured`: with the configured callbacks, the
    lab's own (epoch seeds, loader state, finite loss), then `extra`, and the atomic checkpoint writer (a training
    run); else with `extra` only (pre-training, benchmarks)."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from src.callbacks.checkpoint import AtomicCheckpointIO

    kwargs = {**trainer_arguments(run.trainer, root), **settings}
    if configured:
        kwargs.update(callbacks=[*_lab_callbacks(run, root), *extra], plugins=[AtomicCheckpointIO()])
    else:
        kwargs["callbacks"] = list(extra)
    try:
        return L.Trainer(default_root_dir=str(root), logger=loggers, **kwargs)
    except MisconfigurationException as err:
        raise ConfigError(f"Bad trainer settings: {err}") from None


def _lab_callbacks(run: RunConfig, root: Path) -> list[Callback]:
    """The configured callbacks, then the lab's own: epoch seeds, loader state on resume, a finite loss."""
    from src.callbacks.checkpoint import RestoreLoaderState
    from src.callbacks.epoch_seed import EpochSeed
    from src.callbacks.finite_loss import FiniteLoss

    specs = dict(run.callbacks)
    if not run.trainer.enable_progress_bar:
        specs.pop("progress_bar", None)  # Lightning refuses a progress-bar callback when bars are off
    return [*build_callbacks(specs, root), EpochSeed(run.seed), RestoreLoaderState(), FiniteLoss()]


def evaluation_trainer(cfg: DictConfig, root: Path, **settings: Any) -> L.Trainer:
    """A Trainer for a test or predict pass: the run's accelerator and precision (`settings` over them) on one
    device, without loggers, callbacks, checkpoints or progress bars."""
    import lightning as L

    kwargs = {"accelerator": cfg.trainer.accelerator, "precision": cfg.trainer.precision, **settings}
    return L.Trainer(devices=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                     default_root_dir=str(root), **kwargs)
