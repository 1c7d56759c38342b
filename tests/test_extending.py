"""docs/extending.md's recipes work as written: each block that names a file goes where it says (YAML into a copy of
configs/, Python into the module it names) and a tiny model trains with it."""

import json
import math
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import StochasticWeightAveraging
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf

from src import config
from src.builders import check_buildable
from src.config import compose, to_object
from src.datamodules import augmentation
from src.datamodules.text_classification import TextClassificationDataModule
from src.modules.mean_pooling import MeanPoolingClassifier
from src.modules.model_builder import load_tokenizer
from src.modules.schedulers import build_scheduler
from src.run import Run
from src.training import evaluate, train
from tests.training_helpers import build_module, configured_fit

DOC = config.REPO_ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"```(?:yaml|python)\n# ((?:configs|src)/\S+\.(?:yaml|py))\n(.*?)```", re.DOTALL)
TINY = ("experiment=imdb_tiny", "logger=csv", "data.limit_train=64", "data.limit_val=32", "data.max_length=32",
        "data.batch_size=16", "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false")
REVIEWS = {"bad": "awful broken waste", "ok": "fine average works", "good": "great lovely excellent"}


def doc_blocks() -> dict[str, str]:
    """{file the block names: its text} for every recipe block of docs/extending.md."""
    return dict(BLOCK.findall(DOC.read_text()))


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A copy of configs/ with every YAML recipe written into it, the Python recipes run in their modules
    (undone afterwards), and a small reviews dataset under the data root; yields {path: text}."""
    configs = tmp_path / "configs"
    shutil.copytree(config.CONFIG_DIR, configs)
    found = doc_blocks()
    for path, text in found.items():
        if path.startswith("configs/"):
            (tmp_path / path).write_text(f"# {path}\n{text}")
    monkeypatch.setattr(config, "CONFIG_DIR", configs)
    monkeypatch.setenv("LAB_DATA_DIR", str(_reviews_dataset(tmp_path / "datasets")))
    registered = dict(augmentation.AUGMENTATIONS)
    exec(found["src/datamodules/augmentation.py"], vars(augmentation).copy())  # noqa: S102 - the doc's own code
    yield found
    augmentation.AUGMENTATIONS.clear()
    augmentation.AUGMENTATIONS.update(registered)


def _reviews_dataset(root: Path) -> Path:
    """A data root with the shared datasets (linked) and reviews/{train,test}.csv: 3 string labels in `stars`, text
    in `body` (what reviews.yaml expects)."""
    (root / "reviews").mkdir(parents=True)
    for shared in Path(OmegaConf.create({"root": "${data_root:}"}).root).iterdir():
        (root / shared.name).symlink_to(shared)
    for split, rows in (("train", 30), ("test", 12)):
        stars = [list(REVIEWS)[i % 3] for i in range(rows)]
        table = pd.DataFrame({"body": [f"{REVIEWS[s]} item {i}" for i, s in enumerate(stars)], "stars": stars})
        table.to_csv(root / "reviews" / f"{split}.csv", index=False)
    return root


SHIPPED = ("configs/logger/tensorboard.yaml", "src/modules/mean_pooling.py", "configs/model/minilm_mean.yaml",
           "src/datamodules/text_folder.py", "configs/data/imdb_folders.yaml", "configs/data/nli_pairs.yaml")
# tiny_bert's 2-layer random-init BERT in place of MiniLM's pretrained weights
TINY_BERT = ("model.pretrained=false", "model.architecture={model_type: bert, num_hidden_layers: 2, hidden_size: 64, "
             "num_attention_heads: 2, intermediate_size: 128, max_position_embeddings: 512}")


def test_the_docs_hold_every_recipe_and_show_shipped_files_as_shipped(recipes: dict[str, str]) -> None:
    assert set(recipes) == {"configs/data/reviews.yaml", "configs/model/tiny_distilbert.yaml",
                            "configs/experiment/reviews_tiny.yaml", "configs/optimizer/nadam.yaml",
                            "configs/scheduler/step.yaml", "configs/callbacks/swa.yaml",
                            "configs/logger/tensorboard.yaml", "src/datamodules/augmentation.py",
                            "configs/experiment/imdb_tiny_shout.yaml", *SHIPPED}
    for path in SHIPPED:  # the docs show the shipped files
        assert (config.REPO_ROOT / path).read_text() == recipes[path], path


def test_a_dataset_a_model_and_an_experiment_are_three_yaml_files(recipes: dict[str, str], tmp_path: Path) -> None:
    cfg = compose(["experiment=reviews_tiny", f"run_dir={tmp_path / 'run'}", f"data.cache_dir={tmp_path / 'cache'}",
                   "trainer.enable_progress_bar=false"])
    summary = train(cfg)
    run_dir = Path(summary["run_dir"])
    assert json.loads((run_dir / "labels.json").read_text())["id2label"] == {"0": "bad", "1": "ok", "2": "good"}
    assert pd.read_csv(run_dir / "predictions_test.csv").shape == (12, 5)  # label, pred, 3 class probabilities
    assert summary["global_step"] == 4  # 27 training rows (3 carved for validation) in batches of 8
    checkpoint = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)
    assert checkpoint["hf_config"]["model_type"] == "distilbert" and checkpoint["hf_config"]["n_layers"] == 2


def test_a_lightning_module_is_one_python_file_and_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    cfg = compose([*TINY, "model=minilm_mean", *TINY_BERT, f"run_dir={tmp_path / 'run'}",
                   f"data.cache_dir={tmp_path / 'cache'}"])
    summary = train(cfg)
    module = MeanPoolingClassifier.from_checkpoint(summary["best_checkpoint"])
    batch = {"input_ids": torch.tensor([[101, 2307, 102, 0], [101, 2307, 102, 2307]]),
             "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])}
    module.eval()
    logits = module(batch)
    padded_token_ignored = module({k: v[:1, :3] for k, v in batch.items()})
    assert torch.allclose(logits[:1], padded_token_ignored, atol=1e-5)  # the mean skips padding
    assert not torch.allclose(logits[0], logits[1])  # a different mean, different logits
    assert summary["global_step"] == 8
    run = Run.open(summary["best_checkpoint"])
    assert type(run.load_classifier()) is MeanPoolingClassifier  # eval, predict and compression load the subclass
    assert evaluate(Path(summary["best_checkpoint"]), [])["test"] == pytest.approx(summary["test"])


def test_a_text_pair_dataset_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    cfg = compose([*TINY, "data=nli_pairs", f"run_dir={tmp_path / 'run'}", f"data.cache_dir={tmp_path / 'cache'}"])
    tokenizer = load_tokenizer(cfg.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    datamodule.setup()
    batch = next(iter(datamodule.test_dataloader()))
    assert (batch["token_type_ids"] == 1).any(dim=1).all()  # every row encoded as a pair: [CLS] a [SEP] b [SEP]
    summary = train(cfg)
    predictions = pd.read_csv(Path(summary["run_dir"]) / "predictions_test.csv")
    assert len(predictions) == len(pd.read_csv(config.REPO_ROOT / "tests/data/nli_pairs/test.csv"))
    assert list(predictions.columns[-3:]) == ["prob_entailment", "prob_neutral", "prob_contradiction"]
    assert summary["global_step"] == 2 * math.ceil(48 / 16)  # 60 train rows, 12 (20 %) carved for validation


def test_a_data_module_is_one_python_file_and_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    root = Path(config._data_root()) / "aclImdb"
    for split, rows in (("train", 24), ("test", 8)):
        for i in range(rows):
            label = ("neg", "pos")[i % 2]
            (root / split / label).mkdir(parents=True, exist_ok=True)
            words = REVIEWS["bad" if label == "neg" else "good"]
            (root / split / label / f"{i}_{i % 10}.txt").write_text(f"{words} <br />film {i}")
    cfg = compose([*TINY, "data=imdb_folders", f"run_dir={tmp_path / 'run'}", f"data.cache_dir={tmp_path / 'cache'}"])
    summary = train(cfg)
    assert summary["global_step"] == 4  # 21 training files (3 carved for validation): 2 batches of 16, 2 epochs
    predictions = pd.read_csv(Path(summary["run_dir"]) / "predictions_test.csv")
    assert sorted(predictions["label"]) == [0] * 4 + [1] * 4  # every test file, labelled by its folder
    assert list(predictions.columns[-2:]) == ["prob_neg", "prob_pos"]


def test_nadam_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    trainer = configured_fit(compose([*TINY, "optimizer=nadam", "trainer.max_steps=2"]), tmp_path / "run")
    (optimizer,) = trainer.optimizers
    assert type(optimizer) is torch.optim.NAdam and trainer.global_step == 2
    decayed = {group["weight_decay"] for group in optimizer.param_groups}
    assert decayed == {0.0, 0.01} and all(g["decoupled_weight_decay"] for g in optimizer.param_groups)
    assert {group["initial_lr"] for group in optimizer.param_groups} == {1e-4}  # nadam.yaml's, not imdb_tiny's


def test_a_schedule_is_one_yaml_file(recipes: dict[str, str]) -> None:
    cfg = compose([*TINY, "scheduler=step"])
    check_buildable(cfg)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, to_object(cfg).model.scheduler, total_steps=1000)
    for _ in range(250):
        optimizer.step()
        scheduler.step()
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR and optimizer.param_groups[0]["lr"] == 0.25


def test_stochastic_weight_averaging_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    trainer = configured_fit(compose([*TINY, "callbacks=swa"]), tmp_path / "run")
    (swa,) = [c for c in trainer.callbacks if isinstance(c, StochasticWeightAveraging)]
    assert swa.n_averaged is not None and int(swa.n_averaged) >= 1  # averaging started in the second epoch


def test_a_callback_is_also_one_command_line_override(recipes: dict[str, str]) -> None:
    cfg = compose([*TINY, "callbacks.swa={_target_: lightning.pytorch.callbacks.StochasticWeightAveraging, "
                          "swa_lrs: 1.0e-5}"])
    assert cfg.callbacks.swa.swa_lrs == 1e-5 and "model_checkpoint" in cfg.callbacks


def test_tensorboard_is_one_yaml_file(recipes: dict[str, str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trainer = configured_fit(compose([*TINY, "logger=tensorboard", "trainer.max_steps=2"]), run_dir)
    assert any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow  # trains twice end to end: ~30 s (make test < 8 min; in make test-all)
def test_an_augmentation_is_one_function_and_one_yaml_key(recipes: dict[str, str], tmp_path: Path) -> None:
    cfg = compose(["experiment=imdb_tiny_shout", f"data.cache_dir={tmp_path / 'cache'}"])
    check_buildable(cfg)  # `shout` is registered by the doc's function
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("fit")
    train_texts = datamodule.texts["train"]["text"]
    originals, copies = train_texts[: len(train_texts) // 2], train_texts[len(train_texts) // 2:]
    assert copies == [text.upper() for text in originals] and copies != originals
    build_module(cfg)  # the preset's model builds as well
