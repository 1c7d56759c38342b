"""`Run` opens a run directory or a checkpoint (inside a run or bare) with its config, labels, tokenizer,
preprocessing and model, builds the model only when asked, and refuses a bad run in one line."""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from src import rundir
from src.datamodules.preprocessing import Preprocessing
from src.errors import ConfigError
from src.modules.text_classifier import TextClassifier
from src.run import Run
from tests.compression.helpers import save_plain_checkpoint
from tests.training_helpers import build_module

MakeCfg = Callable[..., DictConfig]


@pytest.fixture
def run_dir(make_cfg: MakeCfg, tmp_path: Path) -> Path:
    """A tiny run as training leaves it: config.yaml, labels.json, checkpoints/last.ckpt, metrics.json."""
    cfg = make_cfg()
    run_dir = Path(cfg.run_dir)
    rundir.save_config(cfg, run_dir)
    rundir.save_labels(run_dir, list(cfg.data.label_names))
    ckpt = save_plain_checkpoint(build_module(cfg), run_dir / "checkpoints" / "last.ckpt")
    rundir.write_metrics(run_dir, {"best_checkpoint": str(ckpt)})
    return run_dir


def test_a_run_directory_opens_with_its_config_labels_tokenizer_and_preprocessing(run_dir: Path) -> None:
    run = Run.open(run_dir, ["data.max_length=32"])
    assert run.checkpoint == run_dir / "checkpoints" / "last.ckpt" and run.run_dir == run_dir.resolve()
    saved = rundir.saved_config(run_dir)
    assert run.cfg.model.name_or_path == saved.model.name_or_path and run.cfg.data.max_length == 32
    assert run.preprocessing == replace(Preprocessing.from_data_config(saved.data), max_length=32)
    assert run.label_names == ["negative", "positive"]
    assert run.tokenizer.pad_token is not None and run.tokenizer("fine")["input_ids"]


def test_opening_a_run_builds_no_model_until_asked(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built, stand_in = [], torch.nn.Identity()
    monkeypatch.setattr(TextClassifier, "from_checkpoint",
                        classmethod(lambda cls, path, **kwargs: built.append(path) or stand_in))
    run = Run.open(run_dir / "checkpoints" / "last.ckpt")
    assert run.cfg.experiment == "imdb_tiny" and run.label_names == ["negative", "positive"]
    assert run.preprocessing.truncation == "head"
    assert run.tokenizer is run.tokenizer and built == []
    assert run.load_classifier(remove_pruned=False) is stand_in and built == [run.checkpoint]


def test_the_model_is_the_checkpoints_in_eval_mode(run_dir: Path) -> None:
    run = Run.open(run_dir)
    model = run.load_classifier()
    saved = rundir.load_checkpoint(run.checkpoint)["state_dict"]
    assert not model.training and model.label_names == run.label_names
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())


def test_a_bare_checkpoint_opens_without_a_run_directory(run_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "elsewhere" / "model.ckpt"
    bare.parent.mkdir()
    bare.write_bytes((run_dir / "checkpoints" / "last.ckpt").read_bytes())
    run = Run.open(bare)
    assert run.label_names == ["negative", "positive"]  # the checkpoint's own names, without labels.json
    assert run.tokenizer.name_or_path == Run.open(run_dir).tokenizer.name_or_path
    assert run.load_classifier().label_names == ["negative", "positive"]
    with pytest.raises(ConfigError, match=r"^No config.yaml in .*: use a checkpoint or directory of a run"):
        _ = run.cfg


def test_a_missing_checkpoint_or_run_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Checkpoint not found: .*missing.ckpt\. Pass CKPT=runs/"):
        Run.open(tmp_path / "missing.ckpt")
    with pytest.raises(ConfigError, match=r"^No checkpoint in "):
        Run.open(tmp_path)


def test_labels_that_disagree_with_the_checkpoint_are_refused(run_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ckpt=.* was trained on labels \['negative', 'positive'\], but this run "
                                          r"has data.label_names=\['bad', 'good'\]"):
        _ = Run.open(run_dir, ["data.label_names=[bad,good]"]).cfg
    (run_dir / "labels.json").write_text(json.dumps({"id2label": {"0": "a", "1": "b", "2": "c"}}))
    with pytest.raises(ConfigError, match=r"labels.json names 3 labels but the checkpoint has 2 outputs\.$"):
        _ = Run.open(run_dir).label_names
