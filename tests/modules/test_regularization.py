"""Regularisation options reach the model: L1/L2 penalty, dropout overrides, label smoothing, clipping."""

from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from src.builders import build_trainer
from src.config import to_object
from src.errors import ConfigError
from src.modules.regularization import penalised_parameters, penalty
from tests.training_helpers import build_module, quick_fit

FAST = ("data.limit_train=64", "data.max_length=32", "optimizer=sgd", "model.optimizer.lr=0.05")


def l1_norm(module, patterns: list[str]) -> float:
    return float(penalty(penalised_parameters(module.model, patterns), "l1"))


def test_l1_penalty_lowers_the_l1_norm_and_is_logged(make_cfg, tmp_path: Path) -> None:
    chosen = ["encoder.layer"]
    plain = quick_fit(make_cfg(*FAST), max_steps=3)
    logger = CSVLogger(tmp_path, name="csv", version="")
    cfg = make_cfg(*FAST, "model.penalty.weight=0.01", "model.penalty.params=[encoder.layer]")
    penalised = quick_fit(cfg, max_steps=3, logger=logger, log_every_n_steps=1)
    logger.save()
    assert l1_norm(penalised, chosen) < l1_norm(plain, chosen) - 1.0
    other = ["embeddings"]  # not penalised: the same trajectory up to the (penalised) layers' influence
    assert l1_norm(penalised, other) == pytest.approx(l1_norm(plain, other), rel=1e-3)
    logged = pd.read_csv(tmp_path / "csv" / "metrics.csv")["train/l1_penalty"].dropna()
    assert len(logged) == 3 and logged.iloc[0] > 0


def test_l2_penalty_matches_sum_of_squares(make_cfg) -> None:
    module = build_module(make_cfg("model.penalty.kind=l2", "model.penalty.weight=0.1",
                                   "model.penalty.params=[classifier]"))
    weight, bias = module.model.classifier.weight, module.model.classifier.bias
    term = penalty(penalised_parameters(module.model, ["classifier"]), "l2")
    assert float(term) == pytest.approx(float(weight.pow(2).sum() + bias.pow(2).sum()), rel=1e-6)


def test_penalty_on_unknown_parameters_is_a_config_error(make_cfg) -> None:
    module = build_module(make_cfg())
    with pytest.raises(ConfigError, match="matches no trainable parameter"):
        penalised_parameters(module.model, ["no_such_layer"])
    with pytest.raises(ConfigError, match="model.penalty.kind"):
        make_cfg("model.penalty.kind=l3")


def test_label_smoothing_reaches_the_loss(make_cfg) -> None:
    module = build_module(make_cfg("model.label_smoothing=0.2"))
    logits, labels = torch.tensor([[2.0, -1.0], [0.5, 0.3]]), torch.tensor([0, 1])
    assert float(module.objective(logits, labels)) == pytest.approx(
        float(F.cross_entropy(logits, labels, label_smoothing=0.2)))
    assert float(module.objective(logits, labels)) != pytest.approx(float(F.cross_entropy(logits, labels)))


def test_dropout_overrides_reach_bert_config_and_modules(make_cfg) -> None:
    module = build_module(make_cfg("model.dropout.hidden=0.3", "model.dropout.attention=0.25",
                                   "model.dropout.classifier=0.4"))
    config = module.model.config
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob, config.classifier_dropout) == (
        0.3, 0.25, 0.4)
    assert module.model.dropout.p == 0.4  # the dropout in front of the classification head
    assert module.model.bert.encoder.layer[0].output.dropout.p == 0.3
    assert module.model.bert.encoder.layer[0].attention.self.dropout.p == 0.25


def test_dropout_overrides_reach_gpt2_and_refuse_missing_keys(make_cfg) -> None:
    module = build_module(make_cfg("model=tiny_gpt2", "model.dropout.hidden=0.2",
                                   "model.dropout.attention=0.15"))
    config = module.model.config
    assert (config.resid_pdrop, config.embd_pdrop, config.attn_pdrop) == (0.2, 0.2, 0.15)
    assert module.model.transformer.drop.p == 0.2
    with pytest.raises(ConfigError, match="model.dropout.classifier"):
        build_module(make_cfg("model=tiny_gpt2", "model.dropout.classifier=0.1"))


def test_gradient_clipping_and_accumulation_reach_the_trainer(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("trainer.gradient_clip_val=0.5", "trainer.accumulate_grad_batches=4")
    trainer = build_trainer(to_object(cfg), tmp_path, loggers=[])
    assert trainer.gradient_clip_val == 0.5 and trainer.accumulate_grad_batches == 4
