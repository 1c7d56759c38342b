"""The compression report measures fp32 and every variant on the same test examples and writes its files."""

import json

import numpy as np
import pytest
import torch

from src.cli.compress_report import main
from src.compression.measure import (
    forward_times_ms,
    interleaved_times_ms,
    latency_stats,
    machine_info,
    nonzero_parameters,
    prediction_scores,
    random_inputs,
    size_on_disk_mb,
    speedup_stats,
)
from src.compression.quantization import quantize_int8
from src.config import to_yaml
from src.reporting import compression_report as report_module
from src.reporting.compression_report import compression_report, markdown_table, render, summarize
from src.reporting.int8_targets import judge, recommend, targets_markdown
from tests.compression.helpers import save_plain_checkpoint
from tests.training_helpers import build_module


def test_measures_count_what_they_claim(make_cfg):
    model = build_module(make_cfg()).model
    total = sum(p.numel() for p in model.parameters())
    assert nonzero_parameters(model) == sum(int((p != 0).sum()) for p in model.parameters())
    assert nonzero_parameters(model) <= total
    qmodel, _ = quantize_int8(model)
    assert size_on_disk_mb(qmodel) < size_on_disk_mb(model) / 2
    times = forward_times_ms(model, random_inputs(2, 16, 100), threads=1, min_run_time=0.01)
    assert times and min(times) > 0
    scores = prediction_scores(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), np.array([1, 1, 1, 1]))
    assert scores == {"accuracy": 0.75, "f1_macro": pytest.approx(0.7333333), "agreement": 0.75}


def test_variants_are_timed_interleaved_round_by_round_in_a_shuffled_order():
    models, inputs = {"fp32": "A", "pruned": "B", "ptq_int8": "C", "bf16": "D"}, {"1": "x1", "32": "x32"}

    def timed(rounds: int, seed: int = 0) -> tuple[list[tuple[str, str]], dict]:
        order: list[tuple[str, str]] = []
        times = interleaved_times_ms(models, inputs, rounds, lambda m, x: order.append((m, x)) or [1.0], seed)
        return order, times

    order, times = timed(rounds=6)
    blocks = [order[i:i + 4] for i in range(0, len(order), 4)]  # one block per (round, input): every model once
    assert [sorted(block) for block in blocks] == [sorted((m, x) for m in "ABCD") for _ in range(6)
                                                  for x in ("x1", "x32")]
    assert len({tuple(m for m, _ in block) for block in blocks}) > 1  # the order changes between rounds
    assert timed(rounds=6)[0] == order and timed(rounds=6, seed=1)[0] != order  # seeded
    assert times["pruned"] == {"1": [[1.0]] * 6, "32": [[1.0]] * 6}


def test_latency_is_median_and_quartiles_of_round_medians():
    # round medians 2, 4, 15, 6, 8 -> sorted 2 4 6 8 15: median 6, p25 4, p75 8 (linear interpolation)
    stats = latency_stats([[1, 3, 2], [4], [10, 20], [5, 6, 7], [8]], batch_size=32)
    assert stats == {"median_ms": 6, "p25_ms": 4, "p75_ms": 8, "samples_per_s": pytest.approx(32000 / 6)}


def test_speedup_is_the_ratio_within_each_round():
    # per-round fp32 / variant = 2, 4, 3 (median 3), not median(fp32) / median(variant) = 20 / 5 = 4
    stats = speedup_stats(reference=[[10], [20], [30]], rounds=[[5], [5], [10]])
    assert stats == {"median": 3, "p25": 2.5, "p75": 3.5}


def test_machine_info_has_the_documented_keys():
    info = machine_info()
    assert {"cpu", "avx2", "avx512", "vnni", "amx", "torch", "threads", "quantized_engine"} <= set(info)
    assert all(isinstance(info[flag], bool) for flag in ("avx2", "avx512", "vnni", "amx"))
    assert info["cpu"] and isinstance(info["threads"], int)


def test_old_repeats_setting_is_rejected():
    assert main(["ckpt=missing.ckpt", "repeats=3"]) == 2


def test_report_has_a_row_per_variant(make_cfg, tmp_path):
    cfg = make_cfg("data.limit_test=32")
    run = tmp_path / "run"
    ckpt = save_plain_checkpoint(build_module(cfg), run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text(to_yaml(cfg))
    settings = {"limit_test": 32, "rounds": 2, "min_run_time": 0.01, "seq_len": 16, "threads": 1, "inductor": False,
                "compiled": False, "calibration_batches": 1, "score_slower": True}
    markdown = compression_report(ckpt, {"distilled": str(ckpt)}, settings, out=tmp_path / "reports")
    report = json.loads((tmp_path / "reports" / "compression.json").read_text())
    rows = report["rows"]
    assert [r["variant"] for r in rows] == ["fp32", "distilled", "ptq_int8", "ort_fp32", "ort_int8", "bf16"]
    assert rows[1]["agreement"] == 1.0 and rows[1]["accuracy"] == rows[0]["accuracy"]
    # validation scored like test (what the targets are judged on): the same model agrees with itself there too
    assert rows[1]["val_agreement"] == 1.0 and rows[1]["val_accuracy"] == rows[0]["val_accuracy"]
    assert report["validation_examples"] == cfg.data.limit_val and report["settings"]["shuffled"]
    assert rows[5]["size_ratio"] == pytest.approx(2, rel=0.01)  # bf16: half the bytes of fp32
    fastest = min((r for r in rows if r["variant"] in ("fp32", "ort_fp32", "bf16")), key=lambda r: r["b32_median_ms"])
    assert fastest["speedup_best_float_b32_median"] == 1
    assert rows[2]["size_ratio"] > 2 and rows[0]["speedup_b32_median"] == 1
    assert rows[3]["agreement"] == 1.0 and rows[3]["nonzero_params"] >= rows[0]["nonzero_params"] * 0.99
    assert rows[4]["size_ratio"] > 2 and report["onnx_parity"]["max_abs_diff"] <= 1e-4
    assert [len(report["times_ms"][name][size]) for name in ("ptq_int8", "ort_int8") for size in ("1", "32")] == [2] * 4
    assert report["machine"]["threads"] == 1 and not (run / "report").exists()
    assert (tmp_path / "reports" / "compression_accuracy_vs_latency.png").stat().st_size > 0
    text = markdown.read_text()
    assert text.startswith("Machine: ") and "| ptq_int8 |" in text and "interleaved over 2 rounds" in text
    assert "| ort_int8 |" in text and "## Targets (issue 12)" in text and "Recommended backend on this machine" in text
    copy = tmp_path / "copy" / "compression.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps(report))
    assert render(copy)[0].read_bytes() == markdown.read_bytes()


def _row(variant: str, ms: float, drop: float, agreement: float, ratio: float, test_drop: float = 0.0) -> dict:
    """A summarized report row: batch-32 median, validation accuracy drop and agreement, size ratio (fp32 at 1000
    ms, the fastest non-int8 row at 800 ms); the test drop differs, so a test-judged verdict would show."""
    return {"variant": variant, "b32_median_ms": ms, "speedup_b32_median": 1000 / ms,
            "speedup_best_float_b32_median": 800 / ms, "val_accuracy": 0.9, "val_acc_drop_pts": drop,
            "val_agreement": agreement, "acc_drop_pts": test_drop, "agreement": 1.0, "size_ratio": ratio}


def test_targets_are_judged_on_validation_against_the_fastest_non_int8_row():
    rows = [_row("fp32", 1000, 0.0, 1.0, 1.0), _row("distilled", 330, 1.3, 0.93, 1.3),
            _row("ptq_int8", 590, -0.05, 0.98, 3.71, test_drop=0.9), _row("bf16", 800, 0.1, 0.99, 2.0),
            _row("ort_fp32", 830, 0.0, 1.0, 1.0), _row("ort_int8", 300, 0.6, 0.975, 3.9)]
    report = {"rows": rows, "machine": {"vnni": True}, "onnx_parity": {"max_abs_diff": 3e-6}}
    verdicts = {t["target"]: (t["measured"], t["verdict"]) for t in judge(report)}
    # 800 / 300: int8's own gain over bf16, the fastest non-int8 row, not 1000 / 300 over fp32 eager
    assert verdicts["VNNI CPU: best int8 ≥ 2.5× faster than the fastest non-int8 row (b32)"] == (
        "ort_int8 2.67× bf16 (3.33× fp32 eager)", "met")
    assert verdicts["accuracy drop ≤ 0.5 pt (validation)"] == ("ptq_int8 -0.05, ort_int8 +0.60",
                                                               "met by ptq_int8; missed by ort_int8")
    assert verdicts["agreement with fp32 ≥ 98% (validation)"][1] == "met by ptq_int8; missed by ort_int8"
    assert verdicts["≥ 3.5× smaller"][1] == "met by ptq_int8, ort_int8"
    assert verdicts["ONNX fp32 logits within 0.0001 of PyTorch"] == ("max |Δ| 3.0e-06", "met")
    # ort_int8 is faster but misses the accuracy target on validation (ptq_int8's worse test drop is not looked at);
    # distilled is another model, not a backend
    assert recommend(rows)["variant"] == "ptq_int8"
    no_vnni = judge({**report, "machine": {"vnni": False}, "onnx_parity": None})
    assert no_vnni[0]["verdict"] == "not applicable: this CPU has no VNNI" and no_vnni[-1]["verdict"] == "not measured"
    missing = "fp32_compiled, bf16_compiled, qat_int8, inductor_int8, inductor_int8_bf16"
    assert f"Not measured in this report: {missing}." in targets_markdown(report)
    # An int8 row left unscored (slower than fp32) is named in the accuracy targets, judged by none, never recommended
    slow = {"variant": "inductor_int8_bf16", "b32_median_ms": 1500, "speedup_b32_median": 1000 / 1500,
            "speedup_best_float_b32_median": 800 / 1500, "size_ratio": 3.8}
    with_slow = judge({**report, "rows": [*rows, slow]})
    assert with_slow[1]["measured"] == "ptq_int8 -0.05, ort_int8 +0.60, inductor_int8_bf16 not scored"
    assert with_slow[1]["verdict"] == "met by ptq_int8; missed by ort_int8"
    assert recommend([*rows, slow])["variant"] == "ptq_int8"
    # A report written before validation scoring is judged on test, and says so.
    old = [{k: v for k, v in r.items() if not k.startswith("val_")} for r in rows]
    assert judge({**report, "rows": old})[1]["target"] == "accuracy drop ≤ 0.5 pt (test)"
    assert recommend(old)["variant"] == "ort_int8"


def test_configurations_slower_than_fp32_are_timed_but_not_scored(make_cfg, monkeypatch):
    model = build_module(make_cfg()).model
    built = {name: (name, model) for name in ("fp32", "bf16", "ort_fp32", "qat_int8", "pruned")}
    # per-round batch-32 medians (ms): bf16 and qat_int8 slower than fp32; qat_int8 and pruned are other models
    ms = {"fp32": 100, "bf16": 400, "ort_fp32": 90, "qat_int8": 200, "pruned": 150}
    times = {name: {"1": [[1.0]] * 2, "32": [[value]] * 2} for name, value in ms.items()}
    monkeypatch.setattr(report_module, "time_variants", lambda models, settings: times)
    batch = {**random_inputs(4, 16, model.config.vocab_size), "labels": torch.tensor([0, 1, 0, 1])}
    loaders = {"validation": [batch], "test": [batch]}
    rows, _ = report_module.measure_variants({}, loaders, {"score_slower": False}, built)
    assert [r["variant"] for r in rows if "accuracy" not in r] == ["bf16"]
    assert all("val_accuracy" in r for r in rows if r["variant"] != "bf16")
    rows = summarize(rows, times)
    table = markdown_table({"rows": rows, "machine": machine_info(), "examples": 4,
                            "settings": {"seq_len": 16, "threads": 1, "min_run_time": 0.01, "rounds": 2}})
    bf16_line = next(line for line in table.splitlines() if line.startswith("| bf16 |"))
    assert bf16_line.endswith("| – | – | – | – | – | – |") and "Not scored: bf16, the fp32 model" in table
    scored, _ = report_module.measure_variants({}, loaders, {"score_slower": True}, built)
    assert all("accuracy" in r for r in scored)


@pytest.mark.slow
def test_report_adds_static_int8_rows_compiled_by_inductor(make_cfg, tmp_path):
    cfg = make_cfg("data.limit_test=32", "data.limit_val=32")
    run = tmp_path / "run"
    ckpt = save_plain_checkpoint(build_module(cfg), run / "checkpoints" / "last.ckpt")
    (run / "config.yaml").write_text(to_yaml(cfg))
    settings = {"limit_test": 32, "rounds": 1, "min_run_time": 0.01, "seq_len": 16, "threads": 1, "inductor": True,
                "compiled": True, "calibration_batches": 2, "score_slower": True}
    markdown = compression_report(ckpt, {}, settings, out=tmp_path / "reports")
    rows = {r["variant"]: r for r in json.loads((tmp_path / "reports" / "compression.json").read_text())["rows"]}
    assert list(rows)[-5:] == ["bf16", "fp32_compiled", "bf16_compiled", "inductor_int8", "inductor_int8_bf16"]
    compiled = rows["fp32_compiled"]
    assert compiled["agreement"] >= 0.95 and compiled["size_ratio"] == pytest.approx(1, rel=1e-3)
    assert rows["inductor_int8"]["path"].startswith("PT2E static int8 of fp32, calibrated on ")
    assert rows["inductor_int8"]["size_ratio"] > 3.5 and rows["inductor_int8"]["agreement"] >= 0.9
    text = markdown.read_text()
    assert "| inductor_int8_bf16 |" in text and "calibrated on 2 validation batches" in text
