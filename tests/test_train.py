"""End-to-end training with tiny random-init BERT and GPT-2 models on slices of the real IMDB data."""

import json
import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from src import rundir
from src.cli import eval as eval_entry
from src.cli import train as train_entry
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError, HubUnreachableError
from src.modules.model_builder import load_tokenizer
from src.modules.text_classifier import TextClassifier
from src.training import train
from tests.training_helpers import fresh_python

MakeCfg = Callable[..., DictConfig]
QUICK = ("data.limit_train=64", "data.limit_val=32", "data.limit_test=32", "data.max_length=64")


def state_dict_of(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("model", ["tiny_bert", "tiny_gpt2"])
def test_fast_dev_run_fit_validate_test(make_cfg: MakeCfg, model: str) -> None:
    cfg = make_cfg(f"model={model}", "trainer.fast_dev_run=true", *QUICK)
    summary = train(cfg)
    run_dir = Path(summary["run_dir"])
    assert {"test/acc", "test/f1_macro", "test/auroc", "test/precision", "test/recall"} <= set(summary["test"])
    assert (run_dir / "config.yaml").is_file()
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == summary["test"]
    assert (run_dir / "figures" / "confusion_matrix.png").is_file()
    assert (run_dir / "figures" / "roc.png").is_file()
    assert len((run_dir / "predictions_test.csv").read_text().splitlines()) == 1 + 32


def test_gpt2_pads_with_eos_and_pools_last_real_token(make_cfg: MakeCfg) -> None:
    cfg = make_cfg("model=tiny_gpt2")
    tokenizer = load_tokenizer(cfg.model)
    model = TextClassifier(dict(cfg.model), ["negative", "positive"]).eval()
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == model.model.config.pad_token_id
    short = tokenizer(["a great movie"], return_tensors="pt")
    padded = tokenizer(["a great movie", "a much longer review that needs no padding at all"],
                       padding=True, return_tensors="pt")
    with torch.no_grad():
        alone = model(dict(short))
        batched = model(dict(padded))
    torch.testing.assert_close(alone[0], batched[0], atol=1e-5, rtol=1e-5)


def test_tiny_model_overfits_32_examples(make_cfg: MakeCfg) -> None:
    cfg = make_cfg("data.limit_train=32", "data.limit_val=16", "data.limit_test=16", "data.max_length=64",
                   "data.batch_size=16", "scheduler=constant", "model.optimizer.lr=3e-3")
    L.seed_everything(cfg.seed)
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    model = TextClassifier(dict(cfg.model), list(cfg.data.label_names))
    L.Trainer(max_epochs=15, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              num_sanity_val_steps=0, limit_val_batches=0).fit(model, datamodule)
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in datamodule.train_dataloader():
            correct += (model(batch).argmax(-1) == batch["labels"]).sum().item()
    assert correct / 32 >= 0.95


def test_same_seed_same_metrics(make_cfg: MakeCfg, tmp_path: Path) -> None:
    first = train(make_cfg(*QUICK, "trainer.max_epochs=1", f"run_dir={tmp_path / 'a'}"))
    second = train(make_cfg(*QUICK, "trainer.max_epochs=1", f"run_dir={tmp_path / 'b'}"))
    assert first["test"] == second["test"]


class _InterruptAt(L.Callback):
    """Simulates Ctrl-C before the batch that would make `step` optimizer steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def _interrupted_train(cfg: DictConfig, step: int) -> None:
    """Run `train(cfg)` and press Ctrl-C (KeyboardInterrupt) when `step` is reached."""
    with pytest.raises(SystemExit):
        train(cfg, callbacks=[_InterruptAt(step)])


def test_resume_after_interrupt_matches_uninterrupted_run(make_cfg: MakeCfg, tmp_path: Path) -> None:
    args = (*QUICK, "data.batch_size=16", "trainer.max_epochs=2")
    full = train(make_cfg(*args, f"run_dir={tmp_path / 'full'}"))
    _interrupted_train(make_cfg(*args, f"run_dir={tmp_path / 'split'}"), step=4)
    resumed = train(make_cfg(*args, "ckpt_path=last", f"run_dir={tmp_path / 'split'}"))
    assert resumed["global_step"] == full["global_step"] == 8
    full_weights = state_dict_of(tmp_path / "full" / "checkpoints" / "last.ckpt")
    resumed_weights = state_dict_of(tmp_path / "split" / "checkpoints" / "last.ckpt")
    for name, tensor in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=0, msg=name)
    assert resumed["test"] == full["test"]


def test_ctrl_c_leaves_checkpoint_and_logs_and_resumes(make_cfg: MakeCfg, tmp_path: Path) -> None:
    run_dir = tmp_path / "interrupted"
    _interrupted_train(make_cfg(*QUICK, "data.batch_size=16", "trainer.max_epochs=2", f"run_dir={run_dir}"),
                       step=5)
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "csv" / "metrics.csv").read_text().startswith(("epoch", "lr", "step", "train", "val"))
    summary = train(make_cfg(*QUICK, "data.batch_size=16", "trainer.max_epochs=2", "ckpt_path=last",
                             f"run_dir={run_dir}"))
    assert summary["global_step"] == 8
    assert (run_dir / "metrics.json").is_file()


def test_eval_prints_metrics_and_writes_json(make_cfg: MakeCfg, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    summary = train(make_cfg(*QUICK, "trainer.max_epochs=1"))
    ckpt = Path(summary["run_dir"]) / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval.json"
    assert eval_entry.main([f"ckpt={ckpt}", f"out={out}"]) == 0
    written = json.loads(out.read_text())["test"]
    printed = capsys.readouterr().out  # one table: a row per metric, a column per split
    assert re.search(rf"acc +│ +{written['test/acc']:.4f} │", printed)
    for key in ("test/acc", "test/f1_macro", "test/auroc"):
        assert 0.0 <= written[key] <= 1.0
    assert eval_entry.main([f"ckpt={ckpt}"]) == 0  # default: named after the checkpoint, beside the others
    assert json.loads((ckpt.parent.parent / "eval" / "last.json").read_text())["test"] == written


def _three_class_checkpoint(cfg: DictConfig, path: Path) -> Path:
    """A checkpoint of an untrained 3-class classifier, in the layout TextClassifier.from_checkpoint reads."""
    module = TextClassifier(OmegaConf.to_container(cfg.model, resolve=True), ["negative", "neutral", "positive"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "hf_config": module.model.config.to_dict(), "global_step": 1}, path)
    return path


def test_a_checkpoint_with_other_labels_is_refused_by_eval_and_train(make_cfg: MakeCfg, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_cfg()
    run_dir = tmp_path / "two-class-run"
    rundir.save_config(cfg, run_dir)
    ckpt = _three_class_checkpoint(cfg, run_dir / "checkpoints" / "last.ckpt")
    with caplog.at_level(logging.ERROR):
        assert eval_entry.main([f"ckpt={ckpt}"]) == 2
    assert caplog.records[-1].getMessage() == (
        f"ckpt={ckpt} was trained on labels ['negative', 'neutral', 'positive'], but this run has data.label_names="
        "['negative', 'positive']: use a checkpoint of a run with the same labels in the same order, or set "
        "data.label_names to them.")
    assert not (run_dir / "eval").exists()
    for key in ("model.init_checkpoint", "ckpt_path"):
        with pytest.raises(ConfigError, match=rf"^{key}=.* was trained on labels \['negative', 'neutral'"):
            train(make_cfg(f"{key}={ckpt}"))


def test_eval_missing_checkpoint_is_a_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert eval_entry.main([f"ckpt={tmp_path / 'nope.ckpt'}"]) == 2
    assert "Checkpoint not found" in caplog.text


def test_wandb_falls_back_to_offline_without_api_key(make_cfg: MakeCfg, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no credentials
    monkeypatch.setenv("NETRC", str(tmp_path / "missing-netrc"))
    cfg = make_cfg(*QUICK, "trainer.fast_dev_run=true", "logger=wandb")
    with caplog.at_level(logging.WARNING):
        summary = train(cfg)
    assert "offline" in caplog.text
    run_dir = Path(summary["run_dir"])
    assert list((run_dir / "wandb").glob("offline-run-*")), "W&B offline run files are missing"
    assert (run_dir / "metrics.json").is_file()


def test_each_run_in_one_process_gets_its_own_wandb_run(make_cfg: MakeCfg, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A design trains its seeds in one process: Lightning's WandbLogger reuses any W&B run still open, so
    # without finishing it every seed after the first would log into the first seed's run.
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    for seed in (1, 2):
        run_dir = Path(train(make_cfg(*QUICK, "trainer.fast_dev_run=true", "logger=wandb", f"seed={seed}",
                                      f"run_dir={tmp_path / f'seed{seed}'}"))["run_dir"])
        assert wandb.run is None
        runs = list((run_dir / "wandb").glob("offline-run-*"))
        assert len(runs) == 1 and (runs[0] / f"run-{runs[0].name.rsplit('-', 1)[1]}.wandb").is_file()


def test_hub_model_without_hub_stops_at_once_naming_offline_default(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert train_entry.main(["experiment=imdb_bert"]) == 2
    assert "bert-base-uncased" in caplog.text and "imdb_minilm" in caplog.text
    assert "Traceback" not in caplog.text
    from src.config import compose
    with pytest.raises(HubUnreachableError, match="Hugging Face Hub"):
        train(compose(["experiment=imdb_gpt2", f"run_dir={tmp_path / 'gpt2-run'}"]))


def test_reported_loss_is_plain_nll_and_validation_is_recorded(make_cfg: MakeCfg, tmp_path: Path) -> None:
    # Class weights and label smoothing shape the training objective only; val/test loss stay plain NLL.
    summary = train(make_cfg(*QUICK, "trainer.max_epochs=1", "data.balancing.strategy=class_weighted_loss",
                             "model.label_smoothing=0.2", "callbacks=default", "trainer.log_every_n_steps=1"))
    run_dir = Path(summary["run_dir"])
    for split, prefix, metrics in (("test", "test/", summary["test"]), ("validation", "val/", summary["validation"])):
        table = pd.read_csv(run_dir / f"predictions_{split}.csv")
        probs = table[[c for c in table.columns if c.startswith("prob_")]].to_numpy()
        nll = -np.log(probs[np.arange(len(table)), table["label"]]).mean()
        assert metrics[f"{prefix}loss"] == pytest.approx(nll, rel=1e-4)
        assert metrics[f"{prefix}acc"] == pytest.approx((table["pred"] == table["label"]).mean())
    assert "train/objective" in pd.read_csv(run_dir / "csv" / "metrics.csv").columns


def test_lightnings_leafspec_deprecation_is_filtered_for_its_module_only() -> None:
    """In a fresh interpreter (pytest resets filters set while it imports): src's filter hides the notice Lightning's
    result collection triggers at the start of every fit, and nothing else."""
    code = ("import warnings, src\n"
            "from lightning.pytorch.utilities._pytree import _tree_flatten\n"
            "_tree_flatten({'loss': 1.0})\n"
            "warnings.warn_explicit('`isinstance(treespec, LeafSpec)` is deprecated', FutureWarning, 'elsewhere.py', 1,"
            " module='elsewhere')\n")
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "LeafSpec" in line] == [
        "elsewhere.py:1: FutureWarning: `isinstance(treespec, LeafSpec)` is deprecated"]


def test_resume_appends_to_the_metric_history(make_cfg: MakeCfg) -> None:
    args = ("data.limit_train=32", "data.limit_val=16", "data.limit_test=16", "data.max_length=32",
            "data.batch_size=16", "trainer.log_every_n_steps=1")
    run_dir = Path(train(make_cfg(*args, "trainer.max_epochs=1"))["run_dir"])
    first = pd.read_csv(run_dir / "csv" / "metrics.csv")
    train(make_cfg(*args, "trainer.max_epochs=2", "ckpt_path=last"))
    lines = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert sum(line.startswith("epoch,") for line in lines) == 1  # one header
    both = pd.read_csv(run_dir / "csv" / "metrics.csv")
    pd.testing.assert_frame_equal(both.iloc[: len(first)][first.columns], first)  # epoch 0, row for row
    resumed = both.iloc[len(first):].dropna(subset=["train/loss"])
    assert set(resumed["epoch"]) == {1} and list(resumed["step"]) == [2, 3]  # then the resumed epoch's steps


def test_a_nan_loss_stops_the_run_with_one_line_and_exit_2(tmp_path: Path, data_cache: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    args = ["experiment=imdb_tiny", f"run_dir={tmp_path}", f"data.cache_dir={data_cache}", "logger=csv",
            "trainer.enable_progress_bar=false", "model.optimizer.lr=1e6", *QUICK, "trainer.max_epochs=1"]
    with caplog.at_level(logging.ERROR):
        assert train_entry.main(args) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.startswith("The training loss is nan at optimizer step 2 (epoch 0, learning rate ")
    assert "model.optimizer.lr" in error and "trainer.precision=bf16-mixed" in error and "\n" not in error
    assert not (tmp_path / "metrics.json").exists()


def test_make_train_with_an_empty_exp_prints_usage_instead_of_training() -> None:
    done = subprocess.run(["make", "train", "EXP="], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=60)
    # under `make test` a nested make prints "Entering directory" first
    assert done.returncode == 2 and "\nusage: make train EXP=<experiment>" in f"\n{done.stdout}"
    assert " imdb_tiny " in done.stdout and "src.cli.train" not in done.stdout + done.stderr
