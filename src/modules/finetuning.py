"""Transfer-learning modes (`model.finetune.mode`) and the layer structure they act on.

full: every weight trains. frozen: the encoder is frozen, only the head trains (feature-based).
partial: embeddings + the bottom `frozen_layers` layers are frozen. lora / adalora / prompt: a `peft`
adapter (the head stays fully trainable). Gradual unfreezing is a callback
(src/callbacks/gradual_unfreezing.py); where the layers are is src.modules.anatomy's business. `merge_and_save` merges a
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
from src.modules.anatomy import LayerStack, layer_stack
from src.schemas import FINETUNE_MODES, PEFT_MODES


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
        set_trainable([_stack(model, mode).backbone], False)
    elif mode == "partial":
        stack = _stack(model, mode)
        if not 0 <= cfg.frozen_layers <= len(stack.layers):
            raise ConfigError(f"model.finetune.frozen_layers={cfg.frozen_layers} but the model has "
                              f"{len(stack.layers)} layers; use 0..{len(stack.layers)}.")
        set_trainable(stack.embeddings + list(stack.layers[: cfg.frozen_layers]), False)
    elif mode in PEFT_MODES:
        return get_peft_model(model, peft_config(model, cfg, tokenizer_name))
    return model


def _stack(model: nn.Module, mode: str) -> LayerStack:
    stack = layer_stack(model)
    if stack is None:
        raise ConfigError(f"model.finetune.mode={mode} needs embeddings and a layer stack, which "
                          f"{type(model).__name__} lacks: use mode=full, lora or adalora.")
    return stack


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
