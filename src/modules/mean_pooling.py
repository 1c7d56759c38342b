"""`MeanPoolingClassifier`: a `TextClassifier` that classifies the mean of the encoder's token states over the real
(unpadded) tokens instead of its [CLS] pooler output, the pooling sentence-transformers models such as MiniLM-L6 were
trained with (Reimers & Gurevych, 2019)."""

import torch

from src.modules.text_classifier import TextClassifier


class MeanPoolingClassifier(TextClassifier):
    """BERT-family classifier on the attention-masked mean of the last hidden states (through the model's own
    dropout and classification layer); loss, metrics, optimizers and checkpoints are TextClassifier's."""

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Float32 logits of the masked mean of the backbone's last hidden states."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        states = self.model.base_model(**inputs).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.model.classifier(self.model.dropout(pooled)).float()
