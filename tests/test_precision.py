"""Every precision finishes on every trainer preset (GPU presets with the accelerator switched to CPU, so all but the
device runs here): it trains, validates, tests and writes its outputs, and `make eval` of its checkpoint reproduces
them. `trainer.precision=auto` follows the CPU's ISA."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from src import hardware
from src.config import compose
from src.errors import ConfigError
from src.training import evaluate, train

REPO = Path(__file__).resolve().parents[1]
CPU_PRECISIONS = ["32-true", "bf16-mixed", "bf16-true", "64-true"]  # 16-mixed is CUDA-only (refused on a CPU)
PRESETS = {"cpu": ["trainer=cpu"], "gpu": ["trainer=gpu", "trainer.accelerator=cpu"],
           "ddp": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"], "ddp_cpu": ["trainer=ddp_cpu"]}
TINY = ["data.limit_train=32", "data.limit_val=16", "data.limit_test=32", "data.max_length=32", "data.batch_size=16",
        "data.eval_batch_size=16", "trainer.max_epochs=1", "callbacks=none", "logger=csv",
        "trainer.enable_progress_bar=false"]
AMX = {"cpu": "Intel Xeon", "cores": 2, "avx2": True, "avx512": True, "vnni": True, "amx": True, "bf16": True}
AVX2 = {**AMX, "avx512": False, "vnni": False, "amx": False, "bf16": False}


def _check_outputs(run_dir: Path, precision: str) -> dict:
    """metrics.json with finite float metrics, predictions of both splits, figures; the precision recorded."""
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert all(0.0 <= summary["test"][k] <= 1.0 for k in ("test/acc", "test/f1_macro", "test/auroc"))
    probs = pd.read_csv(run_dir / "predictions_test.csv").filter(like="prob_")
    assert len(probs) == 32 and probs.sum(axis=1).round(4).eq(1.0).all()
    assert (run_dir / "predictions_validation.csv").is_file() and any((run_dir / "figures").iterdir())
    assert json.loads((run_dir / "provenance.json").read_text())["precision"]["precision"] == precision
    assert f"precision: {precision}" in (run_dir / "config.yaml").read_text()
    return summary


def _check_eval_reproduces(summary: dict) -> None:
    evaluated = evaluate(Path(summary["best_checkpoint"]), [])["test"]
    for key, value in summary["test"].items():
        assert evaluated[key] == pytest.approx(value, abs=1e-6), key


SLOW = pytest.mark.slow  # the same code path as a fast case, or a second process: make test-all runs them


@pytest.mark.parametrize(("preset", "precision"), [
    *(("cpu", p) for p in CPU_PRECISIONS), ("gpu", "bf16-mixed"),
    *(pytest.param("gpu", p, marks=SLOW) for p in CPU_PRECISIONS if p != "bf16-mixed")])
def test_every_precision_trains_tests_writes_and_evaluates(preset: str, precision: str, tmp_path: Path,
                                                           data_cache: Path) -> None:
    cfg = compose(["experiment=imdb_tiny", *PRESETS[preset], f"trainer.precision={precision}", *TINY,
                   f"run_dir={tmp_path / 'run'}", f"data.cache_dir={data_cache}"])
    summary = train(cfg)
    _check_eval_reproduces(_check_outputs(tmp_path / "run", precision))
    if preset == "cpu" and precision == "bf16-true":  # weights stored in bf16: the export is float32 and labelled
        _check_bf16_export(Path(summary["best_checkpoint"]), tmp_path / "export")


def _check_bf16_export(ckpt: Path, out: Path) -> None:
    from transformers import pipeline

    from src.serving.pretrained import export_model

    assert torch.load(ckpt, weights_only=True)["state_dict"]["model.classifier.weight"].dtype == torch.bfloat16
    export_model(ckpt, out)
    outputs = pipeline("text-classification", model=str(out))(["A moving film.", "Dull and far too long."])
    assert {o["label"] for o in outputs} <= {"negative", "positive"}


def _train_in_subprocess(preset: str, precision: str, run_dir: Path, data_cache: Path) -> None:
    """DDP starts its second process from the command line, so these runs go through the CLI."""
    command = [sys.executable, "-m", "src.cli.train", "experiment=imdb_tiny", *PRESETS[preset],
               f"trainer.precision={precision}", *TINY, f"run_dir={run_dir}", f"data.cache_dir={data_cache}"]
    done = subprocess.run(command, cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEMBER: 2/2" in done.stderr


@pytest.mark.parametrize("preset", ["ddp_cpu", pytest.param("ddp", marks=SLOW)])
def test_ddp_presets_train_in_bf16_mixed_and_evaluate(preset: str, tmp_path: Path, data_cache: Path) -> None:
    _train_in_subprocess(preset, "bf16-mixed", tmp_path / "run", data_cache)
    _check_eval_reproduces(_check_outputs(tmp_path / "run", "bf16-mixed"))


@SLOW
@pytest.mark.parametrize("precision", ["32-true", "bf16-true", "64-true"])
def test_ddp_cpu_preset_in_every_other_precision(precision: str, tmp_path: Path, data_cache: Path) -> None:
    _train_in_subprocess("ddp_cpu", precision, tmp_path / "run", data_cache)
    _check_eval_reproduces(_check_outputs(tmp_path / "run", precision))


@pytest.mark.parametrize(("info", "expected", "isa"), [(AMX, "bf16-mixed", "amx"), (AVX2, "32-true", "avx2"),
                                                       ({**AVX2, "avx512": True, "bf16": True}, "bf16-mixed",
                                                        "avx512-bf16")])
def test_auto_precision_follows_the_cpu_isa(info: dict, expected: str, isa: str) -> None:
    choice = hardware.choose_precision("auto", "cpu", info)
    assert choice.precision == expected and isa in choice.reason and choice.warning is None


def test_explicit_bf16_on_a_cpu_without_bf16_units_warns_with_the_cost() -> None:
    choice = hardware.choose_precision("bf16-mixed", "cpu", AVX2)
    assert choice.precision == "bf16-mixed" and "slower than 32-true" in choice.warning
    assert hardware.choose_precision("bf16-mixed", "cpu", AMX).warning is None


def test_compose_resolves_auto_for_this_machine() -> None:
    expected = hardware.choose_precision("auto", "cpu").precision
    assert compose(["experiment=imdb_tiny", "trainer=cpu"]).trainer.precision == expected
    assert compose(["experiment=imdb_tiny", "trainer=gpu", "trainer.accelerator=cpu"]).trainer.precision == expected


def test_auto_on_a_gpu_picks_bf16_or_fp16(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for bf16, expected in ((True, "bf16-mixed"), (False, "16-mixed")):
        monkeypatch.setattr(hardware, "_gpu_bf16", lambda bf16=bf16: bf16)
        assert hardware.choose_precision("auto", "gpu").precision == expected


def test_fp16_autocast_on_a_cpu_and_pure_fp16_training_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="16-mixed .* needs a CUDA GPU"):
        compose(["experiment=imdb_tiny", "trainer.precision=16-mixed"])
    with pytest.raises(ConfigError, match="16-true .* loss turns NaN"):
        compose(["experiment=imdb_tiny", "trainer.precision=16-true"])


@pytest.mark.parametrize("precision", ["32-true", pytest.param("bf16-mixed", marks=SLOW)])
def test_compiled_training_matches_eager(precision: str, make_cfg) -> None:
    """model.compile=true (dynamic shapes) trains the same model as eager, in fp32 and in bf16 (dropout off:
    Inductor draws its own random numbers)."""
    from tests.training_helpers import quick_fit

    tiny = ["data.limit_train=48", "data.max_length=32", "data.batch_size=16", "model.dropout.hidden=0",
            "model.dropout.attention=0", "model.dropout.classifier=0"]
    eager = quick_fit(make_cfg(*tiny), max_steps=3, precision=precision)
    compiled = quick_fit(make_cfg(*tiny, "model.compile=true"), max_steps=3, precision=precision)
    assert compiled._compiled and not eager._compiled
    eager_weights, compiled_weights = eager.state_dict(), compiled.state_dict()
    assert eager_weights.keys() == compiled_weights.keys()  # compiled in place: checkpoints load either way
    tolerance = 1e-4 if precision == "32-true" else 2e-2
    for name, value in eager_weights.items():
        torch.testing.assert_close(compiled_weights[name], value, atol=tolerance, rtol=tolerance, msg=name)
