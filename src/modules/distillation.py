"""Knowledge distillation: a student made of a subset of a fine-tuned teacher's layers learns from it.

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)
       [+ hidden_weight * mean MSE(student hidden state i, teacher hidden state of its source layer)]
(Hinton et al., 2015; the layer-subset initialisation follows DistilBERT.) The student is an ordinary
`TextClassifier` model: its checkpoints hold only the student and load with `TextClassifier.from_checkpoint`.
"""

import copy
import re
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from src.errors import ConfigError
from src.modules.text_classifier import TextClassifier

LAYER_KEY = re.compile(r"^(.*\.(?:layer|h)\.)(\d+)(\..*)$")  # BERT encoder.layer.N / GPT-2 transformer.h.N


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Temperature-scaled KL(teacher || student), times T^2 so gradients keep their scale (Hinton 2015)."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.softmax(teacher_logits / temperature, dim=-1)
    return F.kl_div(log_student, teacher, reduction="batchmean") * temperature**2


def hidden_loss(student_hidden: tuple[torch.Tensor, ...], teacher_hidden: tuple[torch.Tensor, ...],
                layers: list[int]) -> torch.Tensor:
    """Mean MSE between the student's embeddings + layer outputs and the teacher's at the source layers."""
    pairs = [(0, 0)] + [(i + 1, t + 1) for i, t in enumerate(layers)]
    return torch.stack([F.mse_loss(student_hidden[s], teacher_hidden[t]) for s, t in pairs]).mean()


def default_layers(num_teacher_layers: int) -> list[int]:
    """Every other teacher layer (0, 2, 4, ...): half the depth."""
    return list(range(0, num_teacher_layers, 2))


def student_config(teacher_config: PretrainedConfig, layers: list[int]) -> PretrainedConfig:
    """The teacher's config with `len(layers)` layers (num_hidden_layers maps to n_layer for GPT-2)."""
    config = copy.deepcopy(teacher_config)
    config.num_hidden_layers = len(layers)
    return config


def student_state(teacher_state: dict[str, torch.Tensor], layers: list[int]) -> dict[str, torch.Tensor]:
    """Teacher weights renumbered for the student: student layer i <- teacher layer layers[i]."""
    source = {index: i for i, index in enumerate(layers)}
    state = {}
    for key, value in teacher_state.items():
        match = LAYER_KEY.match(key)
        if match is None:
            state[key] = value
        elif int(match.group(2)) in source:
            state[f"{match.group(1)}{source[int(match.group(2))]}{match.group(3)}"] = value
    return state


def load_teacher(path: str) -> PreTrainedModel:
    """The frozen teacher model of a fine-tuned checkpoint, in eval mode."""
    teacher = TextClassifier.from_checkpoint(path).model.eval()
    return teacher.requires_grad_(False)


class DistillationClassifier(TextClassifier):
    """A `TextClassifier` whose training loss distils a fine-tuned teacher (config: `model.distillation`)."""

    def __init__(self, model_cfg: dict[str, Any], label_names: list[str],
                 hf_config: dict[str, Any] | None = None, class_weights: list[float] | None = None,
                 tokenizer: PreTrainedTokenizerBase | None = None) -> None:
        kd = model_cfg["distillation"]
        if model_cfg["finetune"]["mode"] != "full":
            raise ConfigError("model.distillation trains the whole student: use model.finetune.mode=full.")
        teacher = load_teacher(kd["teacher_ckpt"])
        layers = list(kd["student_layers"]) or default_layers(teacher.config.num_hidden_layers)
        fresh = hf_config is None
        if fresh:
            hf_config = student_config(teacher.config, layers).to_dict()
        super().__init__(model_cfg, label_names, hf_config=hf_config, class_weights=class_weights,
                         tokenizer=tokenizer)
        if fresh:
            self.model.load_state_dict(student_state(teacher.state_dict(), layers))
        self.layers = layers
        # not a submodule: the teacher stays out of checkpoints, the optimizer and DDP
        object.__setattr__(self, "teacher", teacher)

    def on_fit_start(self) -> None:
        self.teacher.to(self.device)

    def distillation_losses(self, batch: dict[str, torch.Tensor]
                            ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(every loss term, student logits) for one batch."""
        kd = self.cfg.distillation
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        hidden = kd.hidden_weight > 0
        student = self.model(**inputs, output_hidden_states=hidden)
        with torch.no_grad():
            teacher = self.teacher(**inputs, output_hidden_states=hidden)
        losses = {"kd": kd_loss(student.logits, teacher.logits, kd.temperature),
                  "hard": self.objective(student.logits, batch["labels"])}
        losses["objective"] = kd.alpha * losses["kd"] + (1 - kd.alpha) * losses["hard"]
        if hidden:
            losses["hidden"] = hidden_loss(student.hidden_states, teacher.hidden_states, self.layers)
            losses["objective"] = losses["objective"] + kd.hidden_weight * losses["hidden"]
        return losses, student.logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, logits = self.distillation_losses(batch)
        self.train_acc(logits, batch["labels"])
        self.log_dict({f"train/{k if k == 'objective' else k + '_loss'}": v for k, v in losses.items()})
        self.log("train/loss", F.cross_entropy(logits.detach(), batch["labels"]), prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return losses["objective"]

