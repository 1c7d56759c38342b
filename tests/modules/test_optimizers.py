"""Each optimizer YAML builds its optimizer with the configured lr and args; parameter groups are right."""

import pytest
import torch
from omegaconf import ListConfig, OmegaConf

from src.builders import check_buildable
from src.config import available, compose, to_object
from src.errors import ConfigError
from src.modules.anatomy import is_no_decay, parameter_depths
from src.modules.model_builder import build_model, load_tokenizer
from src.modules.optimizers import build_optimizer
from src.schemas import OptimizerConfig

EXPECTED_TYPES = {"sgd": torch.optim.SGD, "sgd_momentum": torch.optim.SGD, "sgd_nesterov": torch.optim.SGD,
                  "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
                  "adagrad": torch.optim.Adagrad}


@pytest.fixture(scope="module")
def tiny_bert() -> torch.nn.Module:
    cfg = to_object(compose(["experiment=imdb_tiny"]))
    return build_model(cfg.model, list(cfg.data.label_names), load_tokenizer(cfg.model))


def _build(model: torch.nn.Module, *overrides: str) -> torch.optim.Optimizer:
    """The optimizer from configs/optimizer/<name>.yaml (no experiment preset on top)."""
    return build_optimizer(model, to_object(compose(list(overrides))).model.optimizer)


def test_every_optimizer_yaml_is_covered() -> None:
    assert set(available("optimizer")) == set(EXPECTED_TYPES)


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_optimizer_built_from_yaml_with_its_lr_and_args(tiny_bert: torch.nn.Module, name: str) -> None:
    yaml = OmegaConf.load(f"configs/optimizer/{name}.yaml")
    optimizer = _build(tiny_bert, f"optimizer={name}")
    assert type(optimizer) is EXPECTED_TYPES[name]
    lr = yaml.get("lr", OptimizerConfig.lr)  # a YAML without lr keeps the schema's default
    assert {group["lr"] for group in optimizer.param_groups} == {lr}
    class_args = set(yaml) - {"_target_", "lr", "weight_decay", "head_lr", "layer_decay"}
    for key in class_args:
        expected = tuple(yaml[key]) if isinstance(yaml[key], ListConfig) else yaml[key]
        assert all(group[key] == expected for group in optimizer.param_groups), key


def test_no_weight_decay_on_bias_and_layernorm(tiny_bert: torch.nn.Module) -> None:
    optimizer = _build(tiny_bert, "optimizer=adamw", "model.optimizer.weight_decay=0.1")
    names = {id(p): n for n, p in tiny_bert.named_parameters()}
    for group in optimizer.param_groups:
        for param in group["params"]:
            assert group["weight_decay"] == (0.0 if is_no_decay(names[id(param)]) else 0.1), names[id(param)]
    decayed_norms = [n for n in names.values() if "LayerNorm.weight" in n]
    assert decayed_norms and all(is_no_decay(n) for n in decayed_norms)


def test_head_lr_and_layer_wise_decay_follow_the_closed_form(tiny_bert: torch.nn.Module) -> None:
    lr, decay, head_lr = 1e-3, 0.5, 7e-3
    optimizer = _build(tiny_bert, f"model.optimizer.lr={lr}", f"model.optimizer.layer_decay={decay}",
                       f"model.optimizer.head_lr={head_lr}")
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    depths, top = parameter_depths(tiny_bert)  # 2 layers: embeddings 0, layers 1-2, pooler 3, head 4
    assert top == 3
    for name, param in tiny_bert.named_parameters():
        if name.startswith("classifier."):
            assert lr_of[id(param)] == head_lr
        elif "embeddings" in name:
            assert lr_of[id(param)] == pytest.approx(lr * decay**3)
        elif "encoder.layer.0." in name:
            assert lr_of[id(param)] == pytest.approx(lr * decay**2)
        elif "encoder.layer.1." in name:
            assert lr_of[id(param)] == pytest.approx(lr * decay)
        else:
            assert lr_of[id(param)] == pytest.approx(lr), name


def test_frozen_parameters_are_left_out(tiny_bert: torch.nn.Module) -> None:
    tiny_bert.bert.embeddings.requires_grad_(False)
    try:
        optimizer = _build(tiny_bert)
        in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
        assert not in_optimizer & {id(p) for p in tiny_bert.bert.embeddings.parameters()}
    finally:
        tiny_bert.bert.embeddings.requires_grad_(True)


def test_bad_optimizer_args_raise_config_error(tiny_bert: torch.nn.Module) -> None:
    with pytest.raises(ConfigError, match=r"Unknown argument 'model\.optimizer\.betas' for SGD"):
        _build(tiny_bert, "optimizer=sgd", "model.optimizer.betas=[0.9,0.9]")
    with pytest.raises(ConfigError, match=r"model\.optimizer\._target_: torch\.optim has no 'Lion'"):
        check_buildable(compose(["model.optimizer._target_=torch.optim.Lion"]))
