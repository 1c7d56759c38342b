"""Head + tail truncation (Sun et al. 2019): the first head_fraction of the budget and the end are kept."""

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from src.datamodules.text_classification import TextClassificationDataModule
from src.modules.model_builder import load_tokenizer

WORDS = ["good", "bad", "movie", "film", "great", "story", "plot", "actor", "scene", "end"]  # one BERT token each


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
def test_head_tail_keeps_the_start_and_the_end(make_cfg: Callable[..., DictConfig], model: str) -> None:
    cfg = make_cfg(f"model={model}", "data.truncation=head_tail", "data.max_length=22", "data.head_fraction=0.25")
    tokenizer = load_tokenizer(cfg.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    text = " ".join(WORDS[i % len(WORDS)] for i in range(7 * len(WORDS) + 3))
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    budget = 22 - tokenizer.num_special_tokens_to_add()
    head = round(0.25 * budget)
    expected = tokenizer(tokenizer.decode(tokens[:head] + tokens[-(budget - head):]))["input_ids"]
    encoded = datamodule.encode([text, "good film"])
    assert encoded["input_ids"][0] == expected
    assert len(encoded["input_ids"][0]) == 22
    assert encoded["input_ids"][1] == tokenizer("good film")["input_ids"]


def test_head_truncation_is_the_tokenizers_own(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("data.max_length=8")
    tokenizer = load_tokenizer(cfg.model)
    text = " ".join(WORDS * 3)
    encoded = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed).encode([text])
    assert encoded["input_ids"] == tokenizer([text], truncation=True, max_length=8)["input_ids"]
