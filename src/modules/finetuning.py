"""Transfer-learning modes (`model.finetune.mode`) and the layer structure they act on.

full: every weight trains. frozen: the encoder is frozen, only the head trains (feature-based).
partial: embeddings + the bottom `frozen_layers` layers are frozen. lora / adalora / prompt: a `peft`
adapter (the head stays fully trainable). Gradual unfreezing is a callback
(src/callbacks/gradual_unfreezing.py) that uses `parameter_depths` below. `merge_and_save` merges a
LoRA/AdaLoRA adapter into the weights and saves a plain `save_pretrained` directory (`python -m src.cli.merge`).
"""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from peft import AdaLoraConfig, LoraConfig, PeftModel, PromptTuningConfig, TaskType, get_peft_model
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from src.errors import ConfigError
from src.schemas import FINETUNE_MODES, PEFT_MODES


def task_model(model: nn.Module) -> PreTrainedModel:
    """The transformers model under an optional peft wrapper."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def layer_stack(model: nn.Module) -> tuple[list[nn.Module], nn.ModuleList, nn.Module]:
    """(embedding modules, transformer layers bottom-up, backbone) of a BERT- or GPT-2-family model."""
    backbone = task_model(model).base_model
    embeddings = [m for name, m in backbone.named_children()
                  if "embed" in name or isinstance(m, nn.Embedding)]
    stacks = [m for m in backbone.modules() if isinstance(m, nn.ModuleList)]
    if not embeddings or not stacks:
        raise ConfigError(f"Cannot find embeddings and layers in {type(backbone).__name__}: layer-wise "
                          "options (partial, gradual unfreezing, layer_decay) support BERT- and GPT-2-family "
                          "models.")
    return embeddings, max(stacks, key=len), backbone


def parameter_depths(model: nn.Module) -> tuple[dict[str, int], int]:
    """Depth of every parameter by name: embeddings 0, layer i -> i + 1, rest of the backbone L + 1,
    head (everything outside the backbone) L + 2. Returns (depths, L + 1)."""
    embeddings, layers, backbone = layer_stack(model)
    top = len(layers) + 1
    depth_of = {id(p): top for p in backbone.parameters()}
    depth_of.update({id(p): 0 for module in embeddings for p in module.parameters()})
    for index, layer in enumerate(layers):
        depth_of.update({id(p): index + 1 for p in layer.parameters()})
    return {name: depth_of.get(id(p), top + 1) for name, p in model.named_parameters()}, top


def set_trainable(modules: list[nn.Module], trainable: bool) -> None:
    for module in modules:
        module.requires_grad_(trainable)


def apply_finetuning(model: PreTrainedModel, cfg: Any, tokenizer_name: str | None = None) -> nn.Module:
    """Freeze or wrap `model` for the configured mode; returns the model to train (maybe a PeftModel)."""
    mode = cfg.mode
    if mode not in FINETUNE_MODES:
        raise ConfigError(f"Bad value '{mode}' for 'model.finetune.mode'. "
                          f"Allowed: {', '.join(FINETUNE_MODES)}.")
    if mode == "frozen":
        set_trainable([layer_stack(model)[2]], False)
    elif mode == "partial":
        embeddings, layers, _ = layer_stack(model)
        if not 0 <= cfg.frozen_layers <= len(layers):
            raise ConfigError(f"model.finetune.frozen_layers={cfg.frozen_layers} but the model has "
                              f"{len(layers)} layers; use 0..{len(layers)}.")
        set_trainable(embeddings + list(layers[: cfg.frozen_layers]), False)
    elif mode in PEFT_MODES:
        return get_peft_model(model, peft_config(model, cfg, tokenizer_name))
    return model


def peft_config(model: PreTrainedModel, cfg: Any, tokenizer_name: str | None) -> Any:
    """The peft config of a mode; LoRA targets default to peft's per-architecture table
    (BERT: query/value, GPT-2: c_attn)."""
    lora = cfg.lora
    targets = list(lora.target_modules) if lora.target_modules else None
    if cfg.mode == "lora":
        return LoraConfig(task_type=TaskType.SEQ_CLS, r=lora.r, lora_alpha=lora.alpha,
                          lora_dropout=lora.dropout, target_modules=targets)
    if cfg.mode == "adalora":
        ada = cfg.adalora
        # total_step is a placeholder here; `AdaLoraBudget` writes the trainer's real count.
        return AdaLoraConfig(task_type=TaskType.SEQ_CLS, init_r=lora.r, target_r=ada.target_r,
                             tinit=ada.tinit, tfinal=ada.tfinal, deltaT=ada.delta_t, lora_alpha=lora.alpha,
                             lora_dropout=lora.dropout, target_modules=targets,
                             total_step=ada.tinit + ada.tfinal + 1)
    if model.config.model_type == "gpt2":
        raise ConfigError("model.finetune.mode=prompt supports BERT-family models: GPT-2 pools the last "
                          "non-pad token, which peft's prepended virtual tokens hide. Use lora or adalora.")
    prompt = cfg.prompt
    init = {"prompt_tuning_init": "TEXT", "prompt_tuning_init_text": prompt.init_text,
            "tokenizer_name_or_path": tokenizer_name} if prompt.init_text else {}
    return PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=prompt.num_virtual_tokens,
                              **init)


class AdaLoraBudget(Callback):
    """AdaLoRA's rank allocation: the run's real step count at fit start, then one budget update per
    optimizer step, after the step and before the gradients are zeroed (as peft's docs require)."""

    def __init__(self) -> None:
        self.last_step = -1

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        config = pl_module.model.peft_config[pl_module.model.active_adapter]
        total_steps = int(trainer.estimated_stepping_batches)
        if config.tinit >= total_steps - config.tfinal:
            raise ConfigError(f"AdaLoRA needs tinit + tfinal < total optimizer steps ({total_steps}); lower "
                              "model.finetune.adalora.tinit / tfinal or train longer.")
        config.total_step = total_steps
        pl_module.model.base_model.rankallocator.set_total_step(total_steps)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.global_step != self.last_step:  # an optimizer step happened (not mid-accumulation)
            self.last_step = trainer.global_step
            pl_module.model.base_model.update_and_allocate(trainer.global_step)


def finetuning_callbacks(model: nn.Module) -> list[Callback]:
    """Callbacks a fine-tuning mode needs (added through `LightningModule.configure_callbacks`)."""
    return [AdaLoraBudget()] if isinstance(model, PeftModel) and model.peft_type == "ADALORA" else []


def parameter_counts(model: nn.Module) -> dict[str, float]:
    """Trainable and total parameter counts (logged and printed for every run)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / max(total, 1)}


def merged(model: nn.Module) -> nn.Module:
    """LoRA/AdaLoRA adapters merged into plain weights (peft's merge_and_unload); other models as they are."""
    if isinstance(model, PeftModel) and model.peft_type != "PROMPT_TUNING":
        return model.merge_and_unload()
    return model


def merge_and_save(model: nn.Module, tokenizer: PreTrainedTokenizerBase, out_dir: Path) -> Path:
    """Save a model for inference: LoRA/AdaLoRA adapters merged into plain weights; prompt tuning
    (nothing to merge) as a peft adapter directory; other modes as they are."""
    model = merged(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
