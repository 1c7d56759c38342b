"""Domain-adaptive pre-training: `make pretrain` saves a model that a fine-tuning run loads by path."""

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from src.datamodules.pretraining_texts import in_domain_texts
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError
from src.modules.language_model import resolve_objective
from src.modules.model_builder import load_tokenizer
from src.pretraining import pretrain
from src.training import train
from tests.training_helpers import build_module

REPO = Path(__file__).resolve().parents[1]
TINY = ("data.limit_train=64", "data.limit_val=32", "data.limit_test=32", "data.max_length=64")


@pytest.mark.slow  # pre-trains then fine-tunes in subprocesses: ~13 s (make test < 8 min; in make test-all)
def test_make_pretrain_then_finetune_from_its_directory(make_cfg, tmp_path: Path, data_cache: Path) -> None:
    out = tmp_path / "pretrained" / "model"
    args = " ".join([*TINY, "pretrain.max_steps=3", "pretrain.batch_size=8", f"pretrain.output_dir={out}",
                     f"data.cache_dir={data_cache}", "trainer.log_every_n_steps=1",
                     "trainer.enable_progress_bar=false"])
    done = subprocess.run(["make", "pretrain", "EXP=imdb_tiny", f"ARGS={args}"], cwd=REPO,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    losses = pd.read_csv(out.parent / "csv" / "metrics.csv")["pretrain/loss"].dropna()
    assert len(losses) == 3 and losses.notna().all()

    cfg = make_cfg(*TINY, f"model.name_or_path={out}", "model.pretrained=true", "trainer.max_epochs=1")
    encoder = AutoModelForMaskedLM.from_pretrained(out).bert.state_dict()
    loaded = build_module(cfg).model.bert.state_dict()
    assert all(torch.equal(encoder[k], loaded[k]) for k in encoder if k in loaded)  # pooler: new
    summary = train(cfg)
    assert summary["global_step"] > 0 and 0.0 <= summary["test"]["test/acc"] <= 1.0


def test_gpt2_family_continues_causal_lm_training(make_cfg, tmp_path: Path) -> None:
    out = tmp_path / "gpt2-dapt"
    cfg = make_cfg("model=tiny_gpt2", *TINY, "pretrain.max_steps=2", "pretrain.batch_size=8",
                   f"pretrain.output_dir={out}")
    assert pretrain(cfg) == out
    decoder = AutoModelForCausalLM.from_pretrained(out).transformer.state_dict()
    cfg = make_cfg("model=tiny_gpt2", f"model.name_or_path={out}", "model.pretrained=true")
    classifier = build_module(cfg)
    loaded = classifier.model.transformer.state_dict()
    assert decoder.keys() == loaded.keys() and all(torch.equal(decoder[k], loaded[k]) for k in decoder)


def test_objective_follows_the_model_family() -> None:
    assert resolve_objective("auto", "bert") == "mlm"
    assert resolve_objective("auto", "gpt2") == "clm"
    assert resolve_objective("clm", "bert") == "clm"
    with pytest.raises(ConfigError, match="no masked-LM head"):
        resolve_objective("mlm", "gpt2")
    with pytest.raises(ConfigError, match="pretrain.objective"):
        resolve_objective("span", "bert")


@pytest.mark.parametrize("experiment", ["imdb_tiny", "nli_tiny"])
def test_pretraining_texts_are_cut_as_fine_tuning_cuts_them(make_cfg, experiment: str) -> None:
    """data.truncation=head_tail (and text pairs) reach the pre-training texts, not just the classifier's."""
    cfg = make_cfg("data.truncation=head_tail", "data.max_length=16", "data.limit_train=32", experiment=experiment)
    tokenizer = load_tokenizer(cfg.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    datamodule.prepare_texts()
    train = datamodule.cleaned["train"].to_dict()
    expected = datamodule.encode(train["text"], train.get("text_pair"))
    pretraining = in_domain_texts(TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed))
    assert list(pretraining["input_ids"]) == expected["input_ids"]
    assert expected["input_ids"] != tokenizer(train["text"], train.get("text_pair"), truncation=True,
                                              max_length=16)["input_ids"]  # head_tail cut them otherwise
