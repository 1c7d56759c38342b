"""`Run`: a trained run opened from its directory or one of its checkpoints, with everything that uses it needs.

    run = Run.open("runs/imdb_minilm/<run>")            # or .../checkpoints/last.ckpt, optionally with overrides
    run.cfg             the saved config recomposed (+ overrides), refused when its labels are not the checkpoint's
    run.label_names     by id: labels.json, else the checkpoint's own
    run.tokenizer       the checkpoint's model's fast tokenizer
    run.preprocessing   the run's text cleaning and truncation (src.datamodules.preprocessing)
    run.load_classifier()  the trained TextClassifier, built only here

Eval, export, predict, compression and fusion open runs this way; every attribute is read on first use, so
opening a run for its config or labels builds no model, and a checkpoint without a run directory around it
(no config.yaml) still gives its labels, tokenizer and model. Every checkpoint read goes through
`rundir.load_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from src import rundir
from src.config import compose_for_checkpoint, to_schema
from src.errors import ConfigError
from src.schemas import ModelConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from src.datamodules.preprocessing import Preprocessing
    from src.modules.text_classifier import TextClassifier

# What TextClassifier.from_checkpoint reads: a checkpoint lacking one is refused in one line before anything is built.
CHECKPOINT_KEYS = ("state_dict", "hyper_parameters", "hf_config")


@dataclass
class Run:
    """A run's checkpoint, and the config `overrides` it is opened with (e.g. data.limit_test=...)."""

    checkpoint: Path
    overrides: tuple[str, ...] = ()

    @classmethod
    def open(cls, source: Path | str, overrides: Sequence[str] = ()) -> Run:
        """The run of a checkpoint file, or of a run directory (its tested checkpoint, else last.ckpt)."""
        source = Path(source)
        if source.is_dir():
            return cls(rundir.run_checkpoint(source), tuple(overrides))
        if not source.is_file():
            raise ConfigError(f"Checkpoint not found: {source}. "
                              "Pass CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt.")
        return cls(source, tuple(overrides))

    @property
    def run_dir(self) -> Path:
        """The run directory the checkpoint belongs to."""
        return rundir.run_dir_of(self.checkpoint)

    @cached_property
    def cfg(self) -> DictConfig:
        """The run's saved config recomposed with `overrides`; refused when its labels are not the checkpoint's."""
        cfg = compose_for_checkpoint(self.checkpoint, self.overrides)
        rundir.check_checkpoint_labels(self.checkpoint, cfg.data.label_names, "ckpt")
        return cfg

    @cached_property
    def hyper_parameters(self) -> dict[str, Any]:
        """The checkpoint's saved TextClassifier arguments (model config, label names); tensors stay on disk."""
        return rundir.load_checkpoint(self.checkpoint, mmap=True, keys=CHECKPOINT_KEYS)["hyper_parameters"]

    @cached_property
    def label_names(self) -> list[str]:
        """Label names by id from the run's labels.json (the checkpoint's own names when the file is missing)."""
        trained = list(self.hyper_parameters["label_names"])
        names = rundir.read_labels(self.run_dir)
        if names is None:
            return trained
        if len(names) != len(trained):
            raise ConfigError(f"{self.run_dir}/labels.json names {len(names)} labels but the checkpoint has "
                              f"{len(trained)} outputs.")
        return names

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The fast tokenizer of the checkpoint's model config (model.tokenizer, else model.name_or_path)."""
        from src.modules.model_builder import load_tokenizer

        return load_tokenizer(to_schema(ModelConfig, self.hyper_parameters["model_cfg"]))

    @cached_property
    def preprocessing(self) -> Preprocessing:
        """The run's cleaning switches and truncation (data.cleaning, max_length, truncation, head_fraction)."""
        from src.datamodules.preprocessing import Preprocessing

        return Preprocessing.from_data_config(self.cfg.data)

    def load_classifier(self, remove_pruned: bool = True) -> TextClassifier:
        """A fresh TextClassifier of the checkpoint in eval mode (`remove_pruned=False` keeps pruned heads / FFN
        neurons in place as zeros)."""
        from src.modules.text_classifier import TextClassifier

        return TextClassifier.from_checkpoint(self.checkpoint, remove_pruned=remove_pruned).eval()
