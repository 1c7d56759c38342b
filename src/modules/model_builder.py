"""Builds tokenizers and `AutoModelForSequenceClassification` models from the `model` config group.

A model comes from a Hub name, a local directory, or (pretrained=false) a transformers config
with random weights. GPT-2-family models get pad = eos so that batches can be padded and the
classifier pools the last non-pad token.
"""

from pathlib import Path
from typing import Any

from huggingface_hub import try_to_load_from_cache
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from src.errors import ConfigError, HubUnreachableError
from src.hub import OFFLINE_HINT, hub_reachable
from src.modules.regularization import dropout_overrides


def ensure_available(name_or_path: str, what: str = "Model") -> None:
    """Fail at once, with the offline alternative, when `name_or_path` needs an unreachable Hub."""
    if Path(name_or_path).expanduser().exists():
        return
    if try_to_load_from_cache(name_or_path, "config.json") not in (None,) or hub_reachable():
        return
    raise HubUnreachableError(
        f"{what} '{name_or_path}' is not a local path and must be downloaded from the Hugging Face Hub, "
        f"which cannot be reached from this machine. {OFFLINE_HINT}"
    )


def load_tokenizer(model_cfg: Any) -> PreTrainedTokenizerBase:
    """The model's fast tokenizer; GPT-2-style tokenizers without a pad token get pad = eos."""
    name = model_cfg.tokenizer or model_cfg.name_or_path
    ensure_available(name, "Tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_hf_config(model_cfg: Any, label_names: list[str], tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """The transformers config: pretrained checkpoint's or a fresh one from `model.architecture`; id2label /
    label2id carry the label names, so `transformers.pipeline` shows them."""
    overrides = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
                 "label2id": {name: i for i, name in enumerate(label_names)}, "pad_token_id": tokenizer.pad_token_id}
    if model_cfg.pretrained:
        ensure_available(model_cfg.name_or_path)
        config = AutoConfig.from_pretrained(model_cfg.name_or_path, **overrides)
    else:
        architecture = dict(model_cfg.architecture)
        model_type = architecture.pop("model_type", None)
        if model_type is None:
            raise ConfigError("model.architecture.model_type is required when model.pretrained=false "
                              "(e.g. bert, gpt2).")
        try:
            config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **overrides, **architecture)
        except ValueError as err:
            raise ConfigError(f"Bad model.architecture.model_type '{model_type}': {err}") from None
    config.update(dropout_overrides(config.model_type, model_cfg.dropout))
    return config


def build_model(model_cfg: Any, label_names: list[str], tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A sequence classifier with one output per label name, pretrained or randomly initialised."""
    config = build_hf_config(model_cfg, label_names, tokenizer)
    if model_cfg.pretrained:
        model = AutoModelForSequenceClassification.from_pretrained(model_cfg.name_or_path, config=config)
        return model.train()  # from_pretrained returns eval mode; Lightning keeps module modes as found
    return AutoModelForSequenceClassification.from_config(config)


def model_from_config_dict(config_dict: dict[str, Any]) -> PreTrainedModel:
    """Rebuild a model's architecture (random weights) from a saved `config.to_dict()`."""
    config = AutoConfig.for_model(**config_dict)
    return AutoModelForSequenceClassification.from_config(config)
