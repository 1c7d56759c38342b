"""The compression report measures fp32 and every variant on the same test examples and writes its files."""

import json

import numpy as np
import pytest

from src.compress_report import compression_report
from src.compression.measure import latency_ms, nonzero_parameters, prediction_scores, size_on_disk_mb
from src.compression.quantization import quantize_int8
from src.config import to_yaml
from tests.compression.helpers import save_plain_checkpoint
from tests.training_helpers import build_module


def test_measures_count_what_they_claim(make_cfg):
    model = build_module(make_cfg()).model
    total = sum(p.numel() for p in model.parameters())
    assert nonzero_parameters(model) == sum(int((p != 0).sum()) for p in model.parameters())
    assert nonzero_parameters(model) <= total
    qmodel, _ = quantize_int8(model)
    assert size_on_disk_mb(qmodel) < size_on_disk_mb(model) / 2
    timing = latency_ms(model, batch_size=2, seq_len=16, vocab_size=100, repeats=3, warmup=1)
    assert 0 < timing["p50_ms"] <= timing["p95_ms"]
    scores = prediction_scores(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), np.array([1, 1, 1, 1]))
    assert scores == {"accuracy": 0.75, "f1_macro": pytest.approx(0.7333333), "agreement": 0.75}


def test_report_has_a_row_per_variant(make_cfg, tmp_path):
    cfg = make_cfg("data.limit_test=32")
    run = tmp_path / "run"
    ckpt = save_plain_checkpoint(build_module(cfg), run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text(to_yaml(cfg))
    markdown = compression_report(ckpt, {"distilled": str(ckpt)},
                                  {"limit_test": 32, "repeats": 1, "seq_len": 16, "threads": 0})
    rows = json.loads((run / "report" / "compression.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["fp32", "distilled", "ptq_int8"]
    assert rows[1]["agreement"] == 1.0 and rows[1]["accuracy"] == rows[0]["accuracy"]
    assert rows[2]["size_ratio"] > 2
    assert (run / "report" / "compression_accuracy_vs_latency.png").stat().st_size > 0
    assert "| ptq_int8 |" in markdown.read_text()
