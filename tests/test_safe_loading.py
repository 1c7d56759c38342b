"""No file a user might have downloaded is unpickled with code execution: every `torch.load` goes through
src.rundir.load_checkpoint and every Lightning `ckpt_path` load passes weights_only=True (weights_only=False is
allowed only where a checkpoint is saved); a truncated, random or code-carrying checkpoint is refused in one line
by every entry point that loads one."""

import ast
import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from src.cli.eval import main as eval_main
from src.cli.export import main as export_main
from src.cli.predict import main as predict_main
from src.cli.train import main as train_main
from src.config import REPO_ROOT
from src.rundir import save_config, save_labels

LOADERS = {"load", "fit", "validate", "test", "predict", "load_from_checkpoint"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """(called name, call) for every call in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            found.append((name, node))
    return found


def _weights_only(call: ast.Call) -> object:
    """The literal value of the call's weights_only keyword (None when absent or not a literal)."""
    keyword = next((k for k in call.keywords if k.arg == "weights_only"), None)
    return keyword.value.value if keyword is not None and isinstance(keyword.value, ast.Constant) else None


def test_no_load_in_src_unpickles_with_weights_only_false():
    unsafe, torch_loads = [], []
    for path in sorted((REPO_ROOT / "src").rglob("*.py")):
        for name, call in _calls(ast.parse(path.read_text())):
            where = f"{path.relative_to(REPO_ROOT)}:{call.lineno}"
            if name in LOADERS and _weights_only(call) is False:
                unsafe.append(where)
            if ast.unparse(call.func) == "torch.load":
                torch_loads.append(path.relative_to(REPO_ROOT).as_posix())
                if _weights_only(call) is not True:
                    unsafe.append(f"{where} (torch.load without weights_only=True)")
    assert unsafe == [], f"user-supplied files loaded unsafely at {unsafe}"
    assert torch_loads == ["src/rundir.py"]  # one loader (rundir.load_checkpoint) that every checkpoint goes through


class Payload:
    """Unpickling this runs a shell command (what a malicious checkpoint does); it leaves `marker` as proof."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def bad_checkpoint(run_dir: Path, kind: str) -> Path:
    """A truncated, random-bytes or code-carrying .ckpt in a run directory with a real config.yaml."""
    ckpt = run_dir / "checkpoints" / f"{kind}.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if kind == "code":
        torch.save({"state_dict": {}, "hyper_parameters": Payload(run_dir / "code-ran"), "hf_config": {}}, ckpt)
    elif kind == "random":
        ckpt.write_bytes(np.random.default_rng(0).bytes(4096))
    else:
        torch.save({"state_dict": {"w": torch.zeros(1000)}, "hyper_parameters": {}, "hf_config": {}}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:3000])
    return ckpt


@pytest.fixture
def run_dir(make_cfg: Callable[..., DictConfig], tmp_path: Path) -> Path:
    """A run directory of the tiny experiment (config.yaml, labels.json) and no checkpoint of its own."""
    cfg = make_cfg()
    save_config(cfg, tmp_path / "run")
    save_labels(tmp_path / "run", list(cfg.data.label_names))
    return tmp_path / "run"


ENTRY_POINTS = {  # how each entry point is given the checkpoint
    "eval": lambda ckpt, run: (eval_main, [f"ckpt={ckpt}"]),
    "predict": lambda ckpt, run: (predict_main, [f"ckpt={ckpt}", "text=Fine."]),
    "export": lambda ckpt, run: (export_main, [f"ckpt={ckpt}", f"out={run / 'exported'}"]),
    "resume": lambda ckpt, run: (train_main, ["experiment=imdb_tiny", f"run_dir={run}", f"ckpt_path={ckpt}",
                                              "logger=csv"]),
}


@pytest.mark.parametrize("kind", ["truncated", "random", "code"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_bad_checkpoint_is_refused_in_one_line_and_runs_no_code(run_dir, caplog, entry, kind):
    main, args = ENTRY_POINTS[entry](bad_checkpoint(run_dir, kind), run_dir)
    with caplog.at_level(logging.ERROR):
        assert main(args) == 2
    (error,) = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert f"{kind}.ckpt was not loaded: " in error and "\n" not in error and "weights_only" not in error
    assert ("pickled code" if kind == "code" else "damaged") in error
    assert not (run_dir / "code-ran").exists() and not (run_dir / "exported").exists()


@pytest.mark.slow  # four fresh interpreters importing torch and Lightning: ~15-45 s each
@pytest.mark.parametrize("target", ["eval", "predict", "export", "train"])
def test_make_refuses_a_code_carrying_checkpoint_in_one_line(run_dir, target):
    ckpt = bad_checkpoint(run_dir, "code")
    args = {"eval": [f"CKPT={ckpt}"], "predict": [f"CKPT={ckpt}", "TEXT=Fine."],
            "export": [f"CKPT={ckpt}", f"OUT={run_dir / 'exported'}"],
            "train": ["EXP=imdb_tiny", f"ARGS=run_dir={run_dir} ckpt_path={ckpt} logger=csv"]}[target]
    result = subprocess.run(["make", "--no-print-directory", target, *args], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("ERROR ")]
    assert "code.ckpt was not loaded: it holds pickled code or objects (posix.system" in line
    assert "Traceback" not in result.stderr and "weights_only" not in result.stderr + result.stdout
    assert not (run_dir / "code-ran").exists()
