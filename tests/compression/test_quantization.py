"""QAT and PTQ int8: fake quantization trains, conversion really quantizes BERT and GPT-2 linear layers,
int8 predictions agree with the fake-quant model, and the int8 model saves and loads."""

from types import SimpleNamespace

import pytest
import torch
from safetensors import safe_open
from torch.ao.nn.quantized import Embedding as QuantizedEmbedding
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
from torch.ao.quantization import FakeQuantize

from src.callbacks.qat import QuantizationAwareTraining
from src.cli.quantize import main as quantize_main
from src.compression.int8_format import load_int8_state
from src.compression.quantization import (
    attach_fake_quant,
    detach_fake_quant,
    quantizable_linears,
    quantize_int8,
)
from src.compression.sparsity import make_permanent
from src.compression.variants import export_int8, load_int8, load_variant
from src.errors import ConfigError
from tests.compression.helpers import logits, real_batch, save_plain_checkpoint
from tests.training_helpers import build_module, quick_fit


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
def test_qat_fake_quant_trains_and_converts_to_int8(make_cfg, model):
    cfg = make_cfg(f"model={model}")
    module = build_module(cfg)
    batch = real_batch(cfg, 64)
    names = attach_fake_quant(module.model)
    assert len(names) == (12 if model == "tiny_bert" else 8)  # 6 Linear per BERT layer, 4 Conv1D per GPT-2
    layer = module.model.get_submodule(names[0])
    assert isinstance(layer.weight_fake_quant, FakeQuantize)
    assert isinstance(layer.input_fake_quant, FakeQuantize)

    module.train()
    loss = module.objective(module(batch), batch["labels"])
    loss.backward()
    assert all(module.model.get_submodule(n).weight_orig.grad.abs().sum() > 0 for n in names)

    fake_quant_preds = logits(module, batch).argmax(-1)
    detach_fake_quant(module.model)
    make_permanent(module.model)
    qmodel, quantized = quantize_int8(module.model)
    assert quantized["linear"] == names  # GPT-2's Conv1D layers are converted, not skipped
    assert all(isinstance(qmodel.get_submodule(n), DynamicQuantizedLinear) for n in names)
    assert isinstance(qmodel.get_input_embeddings(), QuantizedEmbedding)
    with torch.inference_mode():
        int8_preds = qmodel(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1)
    assert (int8_preds == fake_quant_preds).float().mean() >= 0.95


def test_int8_export_saves_and_loads(make_cfg, tmp_path):
    cfg = make_cfg("model=tiny_gpt2")
    module = build_module(cfg)
    batch = real_batch(cfg, 16)
    path = export_int8(module.model, dict(module.hparams), tmp_path / "m.safetensors", "ptq")
    loaded = load_int8(path)
    qmodel, _ = quantize_int8(module.model)
    with torch.inference_mode():
        expected = qmodel(**{k: v for k, v in batch.items() if k != "labels"}).logits
    torch.testing.assert_close(logits(loaded, batch), expected)
    assert path.stat().st_size < 0.5 * sum(p.numel() * 4 for p in module.model.parameters())


def test_qat_callback_writes_loadable_int8_and_plain_checkpoints(make_cfg, tmp_path):
    cfg = make_cfg("data.limit_train=64")
    callback = QuantizationAwareTraining(tmp_path, start_epoch=0)
    module = quick_fit(cfg, callbacks=[callback], max_steps=2)
    assert callback.export_path == tmp_path / "compression" / "qat_int8.safetensors"
    int8 = load_variant(callback.export_path)
    assert all(isinstance(int8.model.get_submodule(n), DynamicQuantizedLinear)
               for n in quantizable_linears(module.model))
    ckpt = tmp_path / "last.ckpt"
    module.trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert not [k for k in saved["state_dict"] if "fake_quant" in k]
    batch = real_batch(cfg, 32)
    agreement = (logits(int8, batch).argmax(-1) == logits(module, batch).argmax(-1)).float().mean()
    assert agreement >= 0.95


def test_qat_must_follow_pruning(make_cfg, tmp_path):
    from src.callbacks.magnitude_pruning import MagnitudePruning

    with pytest.raises(ConfigError, match="before callbacks.qat"):
        quick_fit(make_cfg("data.limit_train=32"), callbacks=[QuantizationAwareTraining(tmp_path),
                                                             MagnitudePruning(tmp_path)], max_steps=1)


def test_make_quantize_cli_writes_ptq_int8(make_cfg, tmp_path):
    module = build_module(make_cfg())
    ckpt = save_plain_checkpoint(module, tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert quantize_main([f"ckpt={ckpt}"]) == 0
    loaded = load_variant(tmp_path / "run" / "compression" / "ptq_int8.safetensors")
    assert isinstance(loaded.model.bert.encoder.layer[0].attention.self.query, DynamicQuantizedLinear)
    assert quantize_main([f"ckpt={tmp_path / 'missing.ckpt'}"]) == 2


def test_qat_options_start_epoch_exclude_embeddings(make_cfg, tmp_path):
    module = build_module(make_cfg())
    callback = QuantizationAwareTraining(tmp_path, start_epoch=1, exclude=[], quantize_embeddings=False,
                                         filename="int8.safetensors")
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=0), module)
    assert not callback.active and not hasattr(module.model.classifier, "weight_fake_quant")
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=1), module)
    assert callback.active and hasattr(module.model.classifier, "weight_fake_quant")  # exclude=[]: head too
    callback.on_train_end(SimpleNamespace(checkpoint_callback=None, callbacks=[], is_global_zero=True,
                                          global_rank=0), module)
    assert callback.export_path == tmp_path / "compression" / "int8.safetensors"
    int8 = load_int8(callback.export_path).model
    assert isinstance(int8.classifier, DynamicQuantizedLinear)
    assert isinstance(int8.get_input_embeddings(), torch.nn.Embedding)  # quantize_embeddings=false


def test_int8_file_is_plain_safetensors_and_old_pickles_load_only_safely(make_cfg, tmp_path):
    module = build_module(make_cfg())
    path = export_int8(module.model, dict(module.hparams), tmp_path / "m.safetensors", "ptq", source="x.ckpt")
    with safe_open(str(path), framework="pt") as handle:  # readable without torch.load, i.e. without pickle
        assert handle.metadata()["format"] == "llm-lab-int8/2"
        assert handle.get_tensor("bert.encoder.layer.0.attention.self.query._packed_params._packed_params.0"
                                 ".int_repr").dtype == torch.int8
    state, description = load_int8_state(path)
    old = tmp_path / "ptq_int8.pt"  # the previous pickled format is still read, with weights_only=True
    torch.save({"format": "llm-lab-int8/1", **description, "state_dict": state}, old)
    batch = real_batch(make_cfg(), 8)
    torch.testing.assert_close(logits(load_variant(old), batch), logits(load_variant(path), batch))
    torch.save({"format": "llm-lab-int8/1", "payload": ConfigError("runs code when unpickled")}, old)
    with pytest.raises(ConfigError, match=r"ptq_int8\.pt was not loaded: it holds pickled code or objects"):
        load_variant(old)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ConfigError, match="not a readable int8 model file"):
        load_variant(tmp_path / "junk.safetensors")
