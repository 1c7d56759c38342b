"""`make bench` end to end at toy sizes: every variant runs in its own process and the report is written."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_writes_tables_with_ratios(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    command = [sys.executable, "-m", "benchmarks.bench", "--steps", "1", "--warmup", "1", "--batch-size", "2",
               "--max-length", "32", "--padding-length", "64", "--padding-samples", "4", "--repeats", "1",
               "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert "| plain PyTorch loop (same model, DataLoader, optimizer) |" in report
    assert "| 1.000 |" in report and "Template vs Hugging Face Trainer" in report
    assert "| pad every batch to max_length |" in report and "| 64 | 1.00 |" in report
    assert out.with_suffix(".json").is_file()
