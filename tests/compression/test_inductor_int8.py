"""Static int8 compiled by Inductor: int8 weights and token table, calibrated on validation, padding-invariant."""

import pytest
import torch

from src.compression.inductor_int8 import Int8RowEmbedding, drop_unreferenced, padded
from src.compression.measure import nonzero_parameters, size_on_disk_mb
from src.errors import DataError
from src.reporting.compression_report import inductor_variants
from tests.compression.helpers import real_batch
from tests.training_helpers import build_module


def test_int8_row_embedding_rounds_each_row_to_its_own_scale():
    table = torch.nn.Embedding(3, 4)
    table.weight.data = torch.tensor([[1.0, -0.5, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0], [254.0, 127.0, -1.0, 2.0]])
    quantized = Int8RowEmbedding(table)
    assert quantized.weight_int8.dtype == torch.int8
    assert quantized.weight_int8.tolist() == [[127, -64, 32, 0], [0, 0, 0, 0], [127, 64, 0, 1]]
    scale = quantized.scale.flatten().tolist()
    assert scale[0] == pytest.approx(1 / 127) and scale[2] == 2.0 and 0 < scale[1] < 1e-30  # an all-zero row stays 0
    rows = quantized(torch.tensor([[2, 0]]))
    torch.testing.assert_close(rows, torch.tensor([[[254.0, 128.0, 0.0, 2.0], [1.0, -64 / 127, 32 / 127, 0.0]]]))


def test_inputs_are_right_padded_and_bad_inputs_refused():
    batch = {"input_ids": torch.tensor([[5, 6]]), "attention_mask": torch.tensor([[1, 1]])}
    ids, mask = padded(batch, 4, pad_id=0)
    assert ids.tolist() == [[5, 6, 0, 0]] and mask.tolist() == [[1, 1, 0, 0]]
    with pytest.raises(DataError, match="exceed the 1 this int8 graph was built for"):
        padded(batch, 1, pad_id=0)
    with pytest.raises(DataError, match="token_type_ids all 0"):
        padded({**batch, "token_type_ids": torch.tensor([[0, 1]])}, 4, pad_id=0)


def test_unread_tensors_are_dropped_from_a_graph():
    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)

    graph = drop_unreferenced(torch.export.export(Two(), (torch.ones(1, 2),)).module())
    assert sorted(graph.state_dict()) == ["used.bias", "used.weight"]


def test_static_int8_matches_fp32_and_is_four_times_smaller(make_cfg):
    cfg = make_cfg()
    fp32 = build_module(cfg).model.eval()
    batch = {k: v for k, v in real_batch(cfg, 16).items() if k != "labels"}
    seq_len = batch["input_ids"].shape[1] + 8
    built = inductor_variants(fp32, [batch], seq_len)
    assert list(built) == ["inductor_int8", "inductor_int8_bf16"]
    source, int8 = built["inductor_int8"]
    assert source == "PT2E static int8 of fp32, calibrated on 16 validation examples"
    with torch.inference_mode():
        reference, logits = fp32(**batch).logits, int8(**batch).logits
        short = {k: v[:, :9] for k, v in batch.items()}  # 9 tokens, then padding to seq_len (the same graph shape)
        cut, cut_reference = int8(**short).logits, fp32(**short).logits
    assert torch.allclose(logits, reference, atol=0.05)
    assert torch.equal(logits.argmax(-1), reference.argmax(-1))
    assert torch.allclose(cut, cut_reference, atol=0.05) and not torch.allclose(cut, logits, atol=1e-4)
    assert size_on_disk_mb(int8) < size_on_disk_mb(fp32) / 3.5
    weights = sum(p.numel() for p in fp32.parameters())
    assert 0.95 * weights < nonzero_parameters(int8) <= weights
