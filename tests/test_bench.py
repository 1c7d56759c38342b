"""`make bench` end to end at toy sizes: every variant runs in its own process and the report is written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOY = ["--steps", "1", "--warmup", "1", "--batch-size", "2", "--max-length", "32", "--rounds", "1"]


def _bench(*extra: str) -> str:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench", *TOY, *extra], cwd=REPO, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow  # twelve processes, four of them compiling
def test_bench_times_every_loop_in_every_setting_against_the_best_hf_trainer(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    _bench("--out", str(out))
    report, raw = out.read_text(), json.loads(out.with_suffix(".json").read_text())
    assert {r["variant"] for r in raw} == {f"{loop}/{s}" for loop in ("template", "plain", "hf_trainer")
                                           for s in ("fp32", "fp32_compiled", "bf16", "bf16_compiled")}
    best_hf = max((r for r in raw if r["variant"].startswith("hf_trainer/")), key=lambda r: r["samples_per_s"])
    assert f"| hf_trainer | {best_hf['variant'].split('/')[1]} **best** |" in report
    assert "| 1.000 [1.000–1.000] |" in report  # the reference against itself
    assert "This template at its best" in report and "GFLOP/s" in report and "ISA " in report


def test_bench_times_only_the_settings_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    _bench("--settings", "fp32", "--out", str(out))
    report, raw = out.read_text(), json.loads(out.with_suffix(".json").read_text())
    assert sorted(r["variant"] for r in raw) == ["hf_trainer/fp32", "plain/fp32", "template/fp32"]
    assert "--rounds 1 --settings fp32`" in report and "Settings measured: fp32 only." in report
    assert "| template | fp32 **best** |" in report and "| hf_trainer | fp32 **best** | " in report


@pytest.mark.slow
def test_bench_padding_compares_batchings(tmp_path: Path) -> None:
    out = tmp_path / "padding.md"
    _bench("--padding", "--padding-length", "64", "--padding-samples", "4", "--out", str(out))
    assert "| pad every batch to max_length |" in out.read_text() and "| 64 | 1.00 |" in out.read_text()


def test_adamw_kernel_report_takes_ratios_round_by_round() -> None:
    from argparse import Namespace

    from benchmarks.adamw_kernel import REFERENCE, render

    args = Namespace(threads=2, rounds=2, batch_size=8, max_length=64, steps=12, warmup=2)
    steps = {"for-loop": [100.0, 120.0], "foreach": [90.0, 100.0], "fused": [20.0, 30.0]}
    rates = {"template, fused": [18.0, 16.0], REFERENCE: [18.0, 20.0]}
    text = render(args, steps, rates)
    assert "| fused | 25.0 [20.0–30.0] | 4.50 |" in text  # median of 100/20 = 5 and 120/30 = 4
    assert "| template, fused | 17.00 [16.00–18.00] | 0.900 [0.800–1.000] |" in text  # 18/18 and 16/20
