"""MagnitudePruning: sparsity equals the target, excluded modules untouched, heads / neurons really removed,
pruned checkpoints reload into a plain model with the same outputs."""

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from src.callbacks.magnitude_pruning import MagnitudePruning
from src.compression.sparsity import cubic_sparsity, make_permanent, prunable_weights, sparsity
from src.compression.structure import masked_units, remove_units
from src.errors import ConfigError
from src.modules.text_classifier import TextClassifier
from tests.compression.helpers import logits, real_batch
from tests.training_helpers import build_module, quick_fit


def excluded_state(module: TextClassifier) -> dict[str, torch.Tensor]:
    """Embeddings, LayerNorms and the classifier head: what pruning must leave alone by default."""
    return {k: v.clone() for k, v in module.model.state_dict().items()
            if "embeddings" in k or "LayerNorm" in k or "classifier" in k or "pooler" in k}


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_sparsity_hits_target_and_spares_excluded(make_cfg, tmp_path, scope):
    module = build_module(make_cfg())
    before = excluded_state(module)
    callback = MagnitudePruning(tmp_path, target=0.5, scope=scope)
    callback.setup(None, module, "fit")
    for level in (0.2, 0.35, 0.5):  # gradual: masks accumulate
        callback.apply(module.model, level)
    weights = prunable_weights(module.model)
    global_sparsity, per_layer = sparsity(weights)
    assert global_sparsity == pytest.approx(0.5, abs=0.01)
    if scope == "layer":
        assert all(s == pytest.approx(0.5, abs=0.01) for s in per_layer.values())
    encoder_linears = {n for n, m in module.model.named_modules()
                       if isinstance(m, nn.Linear) and "classifier" not in n and "pooler" not in n}
    assert {n for n, _ in weights} == encoder_linears
    after = excluded_state(module)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_cubic_schedule_is_zhu_gupta():
    assert cubic_sparsity(0, 10, 110, 0.8) == 0.0
    assert cubic_sparsity(10, 10, 110, 0.8) == pytest.approx(0.0)
    assert cubic_sparsity(60, 10, 110, 0.8) == pytest.approx(0.8 * (1 - 0.5**3))
    assert cubic_sparsity(500, 10, 110, 0.8) == pytest.approx(0.8)


@pytest.mark.parametrize("method, target", [("heads", 0.5), ("ffn", 0.25)])
def test_structured_units_are_removed_for_real_with_same_outputs(make_cfg, tmp_path, method, target):
    cfg = make_cfg()
    module = build_module(cfg)
    callback = MagnitudePruning(tmp_path, method=method, target=target)
    callback.setup(None, module, "fit")
    callback.apply(module.model, target)
    make_permanent(module.model)
    batch = real_batch(cfg, 16)
    masked_out = logits(module, batch)
    record = {method: masked_units(module.model, method)}
    expected = {"heads": 1, "ffn": 32}[method]  # tiny_bert: 2 heads, 128 neurons per layer
    assert all(len(units) == expected for units in record[method].values()) and len(record[method]) == 2
    params = sum(p.numel() for p in module.model.parameters())
    remove_units(module.model, record)
    assert sum(p.numel() for p in module.model.parameters()) < params
    if method == "heads":
        assert all(layer.attention.self.num_attention_heads == 1 for layer in module.model.bert.encoder.layer)
    torch.testing.assert_close(logits(module, batch), masked_out, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", ["unstructured", "heads"])
def test_pruned_checkpoint_reloads_into_plain_model(make_cfg, tmp_path, method):
    cfg = make_cfg("data.limit_train=64")
    callback = MagnitudePruning(tmp_path, method=method, target=0.5, frequency=1)
    module = quick_fit(cfg, callbacks=[callback], max_steps=2)
    ckpt = tmp_path / "pruned.ckpt"
    module.trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert not [k for k in saved["state_dict"] if k.endswith(("_orig", "_mask"))]
    reloaded = TextClassifier.from_checkpoint(ckpt)
    batch = real_batch(cfg, 16)
    torch.testing.assert_close(logits(reloaded, batch), logits(module, batch), atol=1e-5, rtol=1e-4)
    record = json.loads((tmp_path / "compression" / "pruning-rank0.json").read_text())
    if method == "unstructured":
        assert record["global_sparsity"] == pytest.approx(0.5, abs=0.01)
    else:
        assert [len(heads) for heads in record["units"]["heads"].values()] == [1, 1]  # 1 of 2 per layer
        assert sum(p.numel() for p in reloaded.parameters()) < sum(p.numel() for p in module.parameters())


def test_bad_pruning_config_names_the_key(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="callbacks.pruning.method"):
        MagnitudePruning(tmp_path, method="random")
    with pytest.raises(ConfigError, match="callbacks.pruning.target"):
        MagnitudePruning(tmp_path, target=1.5)
    module = build_module(make_cfg("model=tiny_gpt2"))
    with pytest.raises(ConfigError, match="BERT-family"):
        MagnitudePruning(tmp_path, method="heads").setup(None, module, "fit")


@pytest.mark.parametrize("unit, schedule, expected", [
    ("epoch", "cubic", {24: 0.0, 50: 0.5 * (1 - 0.5**3), 75: 0.5, 99: 0.5}),
    ("step", "one_shot", {0: 0.0, 1: 0.5, 99: 0.5}),
])
def test_schedule_in_steps_or_epochs(tmp_path, unit, schedule, expected):
    callback = MagnitudePruning(tmp_path, target=0.5, schedule=schedule, unit=unit, start=1, end=3)
    trainer = SimpleNamespace(estimated_stepping_batches=100, num_training_batches=25,
                              accumulate_grad_batches=1)
    callback.on_train_start(trainer, None)
    assert callback._steps == ((25, 75) if unit == "epoch" else (1, 3))
    assert {step: callback.level_at(step) for step in expected} == pytest.approx(expected)


def test_target_options_choose_the_layers(make_cfg):
    model = build_module(make_cfg()).model
    names = lambda **kw: {n for n, _ in prunable_weights(model, **kw)}  # noqa: E731
    default = names()
    assert not any("embeddings" in n or "classifier" in n or "pooler" in n for n in default)
    assert names(include_embeddings=True) - default == {"bert.embeddings.word_embeddings",
                                                        "bert.embeddings.position_embeddings",
                                                        "bert.embeddings.token_type_embeddings"}
    assert names(include_classifier=True) - default == {"classifier", "bert.pooler.dense"}
    assert names(exclude=("intermediate",)) == {n for n in default if "intermediate" not in n}
