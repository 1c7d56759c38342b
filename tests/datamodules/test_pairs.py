"""Text pairs (data.text_columns=[premise, hypothesis]): checked at compose time, cleaned, augmented and encoded
side by side, the longer side cut first; old single-column configs still load."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import DictConfig

from src import rundir
from src.config import compose
from src.datamodules.text_classification import TextClassificationDataModule, longest_first
from src.errors import ConfigError
from src.modules.model_builder import load_tokenizer
from src.reporting.data_profile import build_report, render_markdown

MakeCfg = Callable[..., DictConfig]
WORDS = ["good", "bad", "movie", "film", "great", "story", "plot", "actor", "scene", "end"]  # one BERT token each


def words(n: int, offset: int = 0) -> str:
    """`n` one-token words."""
    return " ".join(WORDS[(i + offset) % len(WORDS)] for i in range(n))


def pair_cfg(make_cfg: MakeCfg, *overrides: str) -> DictConfig:
    return make_cfg(*overrides, experiment="nli_tiny")


@pytest.mark.parametrize(("override", "message"), [
    ("data.text_columns=[]", "'data.text_columns': [] names 0 columns; use data.text_columns=[text]"),
    ("data.text_columns=[a,b,c]", "names 3 columns"),
    ("data.text_columns=[premise,premise]", "names one column twice"),
    ("data.text_columns=[premise,'']", "has an empty name"),
    ("data.text_columns=[premise,label]", "'label' is data.label_column"),
    ("data.text_column=premise", "'data.text_column' is now 'data.text_columns', a list of one column or two"),
])
def test_text_columns_are_checked_at_compose_time(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose(["experiment=nli_tiny", override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_run_saved_with_text_column_loads_as_text_columns(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: 3\ndata:\n  text_column: review\n  label_column: label\n")
    assert rundir.saved_config(tmp_path).data == {"_target_": rundir.ADDED_KEYS["data"]["_target_"],
                                                  "label_column": "label", "text_columns": ["review"]}


@pytest.mark.parametrize(("first", "second", "budget"), [(30, 4, 20), (4, 30, 20), (25, 25, 20), (25, 24, 21),
                                                          (11, 10, 20), (3, 5, 20)])
def test_longest_first_keeps_what_the_tokenizer_keeps(make_cfg: MakeCfg, first: int, second: int,
                                                      budget: int) -> None:
    tokenizer = load_tokenizer(make_cfg().model)
    encoded = tokenizer(words(first), words(second, 3), truncation="longest_first",
                        max_length=budget + tokenizer.num_special_tokens_to_add(pair=True))
    kept = [encoded["token_type_ids"].count(side) - 1 for side in (0, 1)]  # [SEP] ends each side
    kept[0] -= 1  # [CLS]
    assert longest_first(first, second, budget) == tuple(kept)


def test_pairs_are_one_sequence_with_the_longer_side_cut_first(make_cfg: MakeCfg) -> None:
    cfg = pair_cfg(make_cfg, "data.max_length=24")
    tokenizer = load_tokenizer(cfg.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    premises, hypotheses = [words(40), "good film"], ["bad plot", words(40, 5)]
    encoded = datamodule.encode(premises, hypotheses)
    assert encoded["input_ids"] == tokenizer(premises, hypotheses, truncation=True, max_length=24)["input_ids"]
    assert [len(ids) for ids in encoded["input_ids"]] == [24, 24]
    assert encoded["token_type_ids"][0][-3:] == [1, 1, 1]  # "bad plot [SEP]" kept whole, the premise cut
    assert tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=True).endswith(f"{words(19)} bad plot")


def test_head_tail_cuts_each_side_to_its_longest_first_share(make_cfg: MakeCfg) -> None:
    cfg = pair_cfg(make_cfg, "data.max_length=23", "data.truncation=head_tail", "data.head_fraction=0.5")
    tokenizer = load_tokenizer(cfg.model)
    datamodule = TextClassificationDataModule(cfg.data, tokenizer, seed=cfg.seed)
    premise, hypothesis = words(30), words(4, 7)  # budget 20: the hypothesis keeps its 4 tokens, the premise 16
    encoded = datamodule.encode([premise, words(30)], [hypothesis, words(30, 1)])
    expected = tokenizer(f"{words(8)} {words(8, 22)}", hypothesis)["input_ids"]
    assert encoded["input_ids"][0] == expected
    both_long = tokenizer(f"{words(5)} {words(5, 25)}", f"{words(5, 1)} {words(5, 26)}")["input_ids"]
    assert encoded["input_ids"][1] == both_long  # 10 tokens each: 5 from the start and 5 from the end


@pytest.fixture
def pair_rows() -> pd.DataFrame:
    """Twelve NLI-style rows, HTML in a hypothesis, one hypothesis empty after cleaning."""
    rows = [(f"A man plays the guitar number {i}.", f"Someone makes music {i}.", i % 2) for i in range(12)]
    frame = pd.DataFrame(rows, columns=["premise", "hypothesis", "label"])
    frame.loc[1, "hypothesis"] = "<br />A <b>loud</b> song."
    frame.loc[2, "hypothesis"] = "<br />"
    return frame


def test_cleaning_augmentation_balancing_and_report_work_on_both_sides(make_cfg: MakeCfg, write_dataset,
                                                                      pair_rows: pd.DataFrame) -> None:
    folder = write_dataset({"train": pair_rows, "test": pair_rows}, fmt="csv")
    cfg = pair_cfg(make_cfg, f"data.path={folder}", "data.label_names=[entailment,not_entailment]",
                   "data.val_split=test", "data.balancing.strategy=synthetic", "data.augmentation.mode=offline",
                   "data.augmentation.ops={mask: 0.5}")
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup()
    test = datamodule.cleaned["test"]
    assert datamodule.cleaning_stats["test"].dropped == 1 and len(test) == 11  # the "<br />" hypothesis
    assert test[1]["text_pair"] == "A loud song."
    train = datamodule.texts["train"]
    originals = len(datamodule.cleaned["train"])
    assert len(train) == 2 * len(datamodule.balanced.dataset) and originals == 11
    masked = train.select(range(len(datamodule.balanced.dataset), len(train)))
    assert all("[MASK]" in row["text"] + row["text_pair"] for row in masked)
    assert any(row["text"].count("[MASK]") != row["text_pair"].count("[MASK]") for row in masked)
    assert set(datamodule.splits["train"].column_names) >= {"input_ids", "token_type_ids", "labels"}
    report, lengths = build_report(datamodule)
    assert report["text_pair"] == ["premise", "hypothesis"]
    assert lengths["test"][1] == len(datamodule.tokenizer("A man plays the guitar number 1.", "A loud song.")[
        "input_ids"])
    markdown = render_markdown(report, {"token_lengths": Path("t.png"), "class_counts": Path("c.png")})
    assert "Text pairs (`premise`, `hypothesis`)" in markdown


def test_online_augmentation_noises_each_side_on_its_own_stream(make_cfg: MakeCfg) -> None:
    cfg = pair_cfg(make_cfg, "data.augmentation.mode=online", "data.augmentation.ops={delete: 0.5}")
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup()
    row = datamodule.texts["train"][0]
    sides = datamodule.augmenter.sides([row["text"], row["text"]], 0, 1, 0)
    assert sides[0] == datamodule.augmenter(row["text"], 0, 1, 0) and sides[0] != sides[1]
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["token_type_ids"].any(1).all()  # every row still has a second segment
