"""Prediction on raw text: every input kind gives the same labels and probabilities on every backend, from a
checkpoint or an export; empty lines, a missing column and unreadable files get named errors; output files
are written whole or not at all."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.errors import ConfigError, EmptyTextError, MissingColumnError, UnreadableInputError
from src.serving.predictor import load_predictor
from src.serving.text_io import prediction_table, read_inputs, read_texts, write_table

TEXTS = ["A wonderful, moving film.", "<br />Dull!!! and far too long", "It was fine.",
         "One of the worst scripts I have read in years, and the acting does not help at all."]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same four texts as .txt, .csv, .jsonl and .parquet (column `review`)."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    table = pd.DataFrame({"id": range(len(TEXTS)), "review": TEXTS})
    table.to_csv(folder / "texts.csv", index=False)
    table.to_json(folder / "texts.jsonl", orient="records", lines=True)
    table.to_parquet(folder / "texts.parquet")
    return {path.suffix: path for path in folder.iterdir()}


def test_every_input_kind_reads_the_same_texts(inputs, monkeypatch):
    assert read_texts(str(inputs[".txt"])) == TEXTS
    for suffix in (".csv", ".jsonl", ".parquet"):
        assert read_texts(str(inputs[suffix]), column="review") == TEXTS
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS)))
    assert read_texts("-") == TEXTS
    assert read_texts(text=TEXTS[0]) == TEXTS[:1]


def test_backends_and_sources_give_the_same_predictions(trained_run, exported):
    reference = load_predictor(trained_run / "checkpoints" / "last.ckpt").predict(TEXTS, batch_size=3,
                                                                                 progress=False)
    np.testing.assert_allclose(reference.sum(1), 1, rtol=1e-6)
    single = np.concatenate([load_predictor(exported).predict([t], progress=False) for t in TEXTS])
    np.testing.assert_allclose(single, reference, atol=1e-6)  # batching, padding and length order change nothing
    np.testing.assert_allclose(load_predictor(exported, "onnx").predict(TEXTS, progress=False), reference, atol=1e-5)
    int8 = load_predictor(exported, "onnx-int8").predict(TEXTS, progress=False)
    np.testing.assert_allclose(int8, reference, atol=0.02)


@pytest.mark.slow  # compiles the int8 graph (~15 s); the compile path is in make test via test_inductor_int8.py
def test_inductor_int8_backend_is_calibrated_on_the_runs_validation_split(trained_run, exported):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    reference = load_predictor(ckpt).predict(TEXTS, progress=False)
    int8 = load_predictor(ckpt, "inductor-int8").predict(TEXTS, progress=False)
    np.testing.assert_allclose(int8, reference, atol=0.02)
    with pytest.raises(ConfigError, match="calibrated on its validation split: pass CKPT="):
        load_predictor(exported, "inductor-int8")


def test_predictions_are_cleaned_like_training(exported):
    predictor = load_predictor(exported)
    raw, clean = predictor.predict(["<b>Great</b>   film!!!"], progress=False), predictor.predict(
        ["Great film!"], progress=False)
    np.testing.assert_allclose(raw, clean, atol=1e-6)
    with pytest.raises(EmptyTextError, match="empty after the run's cleaning"):
        predictor.predict(["<br />"], progress=False)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_output_has_label_and_probabilities(exported, tmp_path, suffix):
    predictor = load_predictor(exported)
    table = prediction_table(TEXTS, predictor.predict(TEXTS, progress=False), predictor.label_names)
    out = write_table(table, tmp_path / f"predictions{suffix}")
    read = pd.read_csv(out) if suffix == ".csv" else pd.read_json(out, lines=True)
    assert list(read.columns) == ["text", "label", "prob_negative", "prob_positive"]
    assert read["text"].tolist() == TEXTS
    probs = read[["prob_negative", "prob_positive"]].to_numpy()
    assert read["label"].tolist() == [predictor.label_names[i] for i in probs.argmax(1)]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_lines_end_at_newlines_only(tmp_path, monkeypatch):
    texts = ["one\u2028still one", "two\x85\x1c\x0b\x0c and the rest", "three"]
    (tmp_path / "lines.txt").write_bytes("\r\n".join(texts).encode() + b"\n")
    assert read_texts(str(tmp_path / "lines.txt")) == texts  # str.splitlines would give 7 texts
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts)))
    assert read_texts("-") == texts


def test_a_tables_other_columns_are_kept_in_the_output(inputs, tmp_path):
    rows = read_inputs(str(inputs[".csv"]), column="review").assign(label=["a", "b", "c", "d"])
    probs = np.tile([[0.25, 0.75]], (len(TEXTS), 1))
    table = prediction_table(rows["text"].tolist(), probs, ["negative", "positive"], rows.drop(columns="text"))
    assert list(table.columns) == ["id", "input_label", "text", "label", "prob_negative", "prob_positive"]
    assert table["id"].tolist() == [0, 1, 2, 3] and table["input_label"].tolist() == ["a", "b", "c", "d"]
    assert table["text"].tolist() == TEXTS and set(table["label"]) == {"positive"}


def test_bad_inputs_get_named_errors(inputs, tmp_path):
    (tmp_path / "gaps.txt").write_text("good\n\nbad\n")
    with pytest.raises(EmptyTextError, match="line\\(s\\) 2"):
        read_texts(str(tmp_path / "gaps.txt"))
    with pytest.raises(MissingColumnError, match="no column 'text' \\(columns: id, review\\)"):
        read_texts(str(inputs[".csv"]))
    pd.DataFrame({"text": ["fine", None, " "]}).to_parquet(tmp_path / "holes.parquet")
    with pytest.raises(EmptyTextError, match="2 row\\(s\\) \\(row\\(s\\) 2, 3\\)"):
        read_texts(str(tmp_path / "holes.parquet"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UnreadableInputError, match="Cannot read .*broken.parquet"):
        read_texts(str(tmp_path / "broken.parquet"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UnreadableInputError, match="not UTF-8"):
        read_texts(str(tmp_path / "latin1.txt"))
    (tmp_path / "x.docx").write_bytes(b"PK")
    for source, match in ((str(tmp_path / "missing.txt"), "not found"), (str(tmp_path / "x.docx"), "Unsupported")):
        with pytest.raises(UnreadableInputError, match=match):
            read_texts(source)
    with pytest.raises(EmptyTextError):
        read_texts(text="  ")


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    table = pd.DataFrame({"text": ["a"], "label": ["x"]})
    (tmp_path / "old.csv").write_text("previous results\n")

    def crash(self, file, **kwargs):
        file.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        write_table(table, tmp_path / "old.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["old.csv"]
    assert (tmp_path / "old.csv").read_text() == "previous results\n"
    with pytest.raises(ConfigError, match="csv or .jsonl"):
        write_table(table, tmp_path / "out.xlsx")


def test_onnx_backend_needs_an_onnx_export(trained_run, tmp_path):
    with pytest.raises(ConfigError, match="FORMAT=onnx"):
        load_predictor(trained_run / "checkpoints" / "last.ckpt", "onnx")
    with pytest.raises(ConfigError, match="Unknown backend"):
        load_predictor(trained_run / "checkpoints" / "last.ckpt", "tensorrt")
    assert json.loads((trained_run / "labels.json").read_text())["id2label"]["1"] == "positive"
