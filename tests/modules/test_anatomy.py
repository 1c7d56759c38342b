"""src.modules.anatomy finds the parts of BERT- and GPT-2-family classifiers, and says None where a part is missing."""

import pytest
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn

from src.config import compose, to_object
from src.modules import anatomy
from src.modules.model_builder import build_model, load_tokenizer


def _tiny(model: str) -> nn.Module:
    cfg = to_object(compose(["experiment=imdb_tiny", f"model={model}"]))
    return build_model(cfg.model, list(cfg.data.label_names), load_tokenizer(cfg.model))


@pytest.fixture(scope="module")
def tiny_bert() -> nn.Module:
    return _tiny("tiny_bert")


@pytest.fixture(scope="module")
def tiny_gpt2() -> nn.Module:
    return _tiny("tiny_gpt2")


def test_bert_layer_stack_depths_and_head(tiny_bert: nn.Module) -> None:
    stack = anatomy.layer_stack(tiny_bert)
    assert stack.layers is tiny_bert.bert.encoder.layer and stack.embeddings == [tiny_bert.bert.embeddings]
    depths, top = anatomy.parameter_depths(tiny_bert)
    assert top == len(stack.layers) + 1 == 3
    assert depths["bert.embeddings.word_embeddings.weight"] == 0
    assert depths["bert.encoder.layer.1.output.dense.weight"] == 2
    assert depths["bert.pooler.dense.weight"] == top and depths["classifier.weight"] == top + 1
    assert anatomy.encoder_layers(tiny_bert) is stack.layers


def test_gpt2_has_a_stack_but_no_bert_heads_and_decays_no_norm(tiny_gpt2: nn.Module) -> None:
    stack = anatomy.layer_stack(tiny_gpt2)
    assert stack.layers is tiny_gpt2.transformer.h
    assert {id(m) for m in stack.embeddings} == {id(tiny_gpt2.transformer.wte), id(tiny_gpt2.transformer.wpe)}
    assert anatomy.encoder_layers(tiny_gpt2) is None  # structured pruning is BERT-only
    no_decay = {name for name, _ in tiny_gpt2.named_parameters() if anatomy.is_no_decay(name)}
    assert "transformer.h.0.ln_1.weight" in no_decay and "transformer.h.0.attn.c_attn.weight" not in no_decay
    assert "transformer.ln_f.weight" in no_decay and "score.weight" not in no_decay


def test_peft_wrapped_model_is_seen_through(tiny_bert: nn.Module) -> None:
    wrapped = get_peft_model(_tiny("tiny_bert"), LoraConfig(task_type=TaskType.SEQ_CLS, r=2))
    assert anatomy.task_model(wrapped) is wrapped.get_base_model()
    assert len(anatomy.layer_stack(wrapped).layers) == len(anatomy.layer_stack(tiny_bert).layers)


def test_a_model_without_layers_has_no_stack() -> None:
    class Flat(nn.Module):
        base_model = nn.Linear(2, 2)

    assert anatomy.layer_stack(Flat()) is None and anatomy.parameter_depths(Flat()) is None
    assert anatomy.encoder_layers(Flat()) is None


def test_named_in_matches_whole_dotted_components() -> None:
    assert anatomy.named_in("classifier", anatomy.HEAD_NAMES)
    assert anatomy.named_in("bert.pooler.dense", anatomy.HEAD_NAMES)
    assert not anatomy.named_in("bert.encoder.layer.0.classifierish", anatomy.HEAD_NAMES)
    assert anatomy.named_in("bert.encoder.layer.3.output", (r"layer\.3",))


def test_bert_layer_parts_are_where_anatomy_says(tiny_bert: nn.Module) -> None:
    layer = anatomy.encoder_layers(tiny_bert)[0]
    attention = layer.get_submodule(anatomy.SELF_ATTENTION)
    assert all(isinstance(getattr(attention, name), nn.Linear) for name in anatomy.QKV)
    inner, outer = layer.get_submodule(anatomy.FFN_IN), layer.get_submodule(anatomy.FFN_OUT)
    assert inner.out_features == outer.in_features == tiny_bert.config.intermediate_size
    assert layer.get_submodule(anatomy.ATTENTION_OUT).in_features == tiny_bert.config.hidden_size
