"""The in-domain texts of domain-adaptive pre-training (src/pretraining.py): the experiment's own train split."""

from datasets import Dataset

from src.datamodules.text_classification import TextClassificationDataModule


def in_domain_texts(datamodule: TextClassificationDataModule) -> Dataset:
    """The data module's cleaned train-split texts (or text pairs, as one sequence), tokenized and cut as
    fine-tuning cuts them (data.max_length, data.truncation); labels dropped."""
    datamodule.prepare_texts()
    texts = datamodule.cleaned["train"]
    return texts.map(lambda batch: datamodule.encode(batch["text"], batch.get("text_pair")),
                     batched=True, remove_columns=texts.column_names, desc="Tokenizing pre-training texts")
