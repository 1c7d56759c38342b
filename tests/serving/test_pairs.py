"""A text-pair task end to end on the committed NLI fixture (configs/data/nli_pairs.yaml): a tiny run trains and
tests on premise + hypothesis, `make predict` reads two columns (or TEXT + TEXT_PAIR), and the export serves the
same probabilities through load_exported, ONNX Runtime and `transformers.pipeline`."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import pipeline

from src import rundir
from src.cli.predict import main as predict_main
from src.config import REPO_ROOT, compose
from src.errors import InputTextError
from src.serving.predictor import load_predictor
from src.serving.pretrained import export_model
from src.training import train

FIXTURE = REPO_ROOT / "tests" / "data" / "nli_pairs"
LABELS = ["entailment", "neutral", "contradiction"]


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> Path:
    """The run directory of one epoch of experiment nli_tiny (a 2-layer random-init BERT on the pair fixture)."""
    run_dir = tmp_path_factory.mktemp("pairs") / "run"
    train(compose(["experiment=nli_tiny", f"run_dir={run_dir}", f"data.cache_dir={data_cache}",
                   "trainer.enable_progress_bar=false", "trainer.max_epochs=1", "trainer.precision=32-true"]))
    return run_dir


@pytest.fixture(scope="module")
def pair_export(pair_run: Path) -> Path:
    return export_model(pair_run / "checkpoints" / "last.ckpt", pair_run.parent / "exported", onnx=True)


@pytest.fixture(scope="module")
def test_rows() -> pd.DataFrame:
    return pd.read_csv(FIXTURE / "test.csv")


def test_a_pair_run_trains_and_tests_on_both_texts(pair_run: Path, test_rows: pd.DataFrame) -> None:
    assert rundir.read_config(pair_run)["data"]["text_columns"] == ["premise", "hypothesis"]
    assert "test/acc" in rundir.read_metrics(pair_run)["test"]
    probs, labels = rundir.read_predictions(pair_run)
    assert probs.shape == (len(test_rows), 3) and sorted(labels) == sorted(LABELS.index(y) for y in test_rows.label)


def test_export_serves_pairs_like_the_checkpoint(pair_run: Path, pair_export: Path, test_rows: pd.DataFrame) -> None:
    premises, hypotheses = test_rows.premise.tolist(), test_rows.hypothesis.tolist()
    reference = load_predictor(pair_run / "checkpoints" / "last.ckpt").predict(premises, pairs=hypotheses,
                                                                                progress=False)
    exported = load_predictor(pair_export)
    np.testing.assert_allclose(exported.predict(premises, 5, False, hypotheses), reference, atol=1e-6)
    onnx = load_predictor(pair_export, "onnx").predict(premises, progress=False, pairs=hypotheses)
    np.testing.assert_allclose(onnx, reference, atol=1e-5)
    classifier = pipeline("text-classification", model=str(pair_export), device="cpu")
    found = classifier([{"text": p, "text_pair": h} for p, h in zip(premises, hypotheses, strict=True)],
                       truncation=True)
    np.testing.assert_allclose([row["score"] for row in found], reference.max(1), atol=1e-5)
    assert json.loads((pair_export / "preprocessing.json").read_text())["text_columns"] == ["premise", "hypothesis"]
    card = (pair_export / "README.md").read_text()
    assert "Each input is a text pair (`premise` + `hypothesis`)" in card and '"text_pair": ' in card
    with pytest.raises(InputTextError, match="classifies text pairs \\(trained on premise \\+ hypothesis\\)"):
        exported.predict(premises, progress=False)


def test_make_predict_reads_two_columns_or_text_and_text_pair(pair_export: Path, test_rows: pd.DataFrame,
                                                              tmp_path: Path, capsys, caplog) -> None:
    out = tmp_path / "predictions.csv"
    assert predict_main([f"model={pair_export}", f"input={FIXTURE / 'test.csv'}", "column=premise",
                         "pair_column=hypothesis", f"out={out}"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["id", "input_label", "text", "text_pair", "label",
                                   *(f"prob_{name}" for name in LABELS)]
    assert table.text.tolist() == test_rows.premise.tolist()
    assert table.text_pair.tolist() == test_rows.hypothesis.tolist()
    capsys.readouterr()
    row = test_rows.iloc[0]
    assert predict_main([f"model={pair_export}", f"text={row.premise}", f"text_pair={row.hypothesis}"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["label"] == table.label[0]
    assert printed["prob_neutral"] == pytest.approx(table.prob_neutral[0], abs=1e-6)  # files keep 6 decimals
    with caplog.at_level(logging.ERROR):
        assert predict_main([f"model={pair_export}", f"input={FIXTURE / 'test.csv'}", "column=premise",
                             "pair_column=claim"]) == 2
        assert predict_main([f"model={pair_export}", f"text={row.premise}"]) == 2
    assert "has no column 'claim' (columns: id, premise, hypothesis, label); pass PAIR_COLUMN=" in caplog.text
    assert "give the second texts too (PAIR_COLUMN=<column> for a table, TEXT_PAIR=" in caplog.text
