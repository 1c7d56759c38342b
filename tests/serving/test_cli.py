"""`make export` and `make predict` end to end: each input kind, each bad input (exit 2, one line naming the
problem, no output file), both backends, and the Makefile's quoting of TEXT."""

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from src.cli.export import main as export_main
from src.cli.predict import main as predict_main
from src.config import REPO_ROOT

TEXTS = ["A wonderful, moving film.", "Dull and far too long."]


def test_export_entry_point_writes_an_onnx_export(trained_run, tmp_path, caplog):
    out = tmp_path / "model"
    assert export_main([f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}", f"out={out}", "format=onnx"]) == 0
    assert {"model.safetensors", "model.onnx", "model.int8.onnx", "README.md"} <= {p.name for p in out.iterdir()}
    assert f"make export CKPT={trained_run / 'checkpoints' / 'last.ckpt'} OUT={out} FORMAT=onnx" in (
        out / "README.md").read_text()
    with caplog.at_level(logging.ERROR):
        assert export_main([f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}", f"out={out}", "format=tf"]) == 2
    assert "Bad format=tf: use one of hf, onnx" in caplog.text


@pytest.mark.parametrize("kind", ["txt", "csv", "jsonl", "parquet", "stdin"])
def test_predict_reads_every_input_kind(exported, tmp_path, monkeypatch, kind):
    table = pd.DataFrame({"text": TEXTS})
    source = tmp_path / f"in.{kind}"
    if kind in ("txt", "stdin"):
        source.write_text("\n".join(TEXTS) + "\n")
        monkeypatch.setattr("sys.stdin", io.StringIO(source.read_text()))
    else:
        getattr(table, {"csv": "to_csv", "jsonl": "to_json", "parquet": "to_parquet"}[kind])(
            source, **({"index": False} if kind == "csv" else {"orient": "records", "lines": True} if kind == "jsonl"
                       else {}))
    out = tmp_path / "predictions.jsonl"
    assert predict_main([f"model={exported}", f"input={'-' if kind == 'stdin' else source}", f"out={out}"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS and {r["label"] for r in rows} <= {"negative", "positive"}


def test_predict_prints_json_lines_without_out_on_either_backend(exported, trained_run, capsys):
    results = []
    for source, backend in ((f"ckpt={trained_run / 'checkpoints' / 'last.ckpt'}", "torch"),
                            (f"model={exported}", "onnx")):
        assert predict_main([source, f"text={TEXTS[0]}", f"backend={backend}"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["label"] == results[1]["label"]
    assert results[0]["prob_positive"] == pytest.approx(results[1]["prob_positive"], abs=1e-5)


@pytest.mark.parametrize("content, args, message", [
    ("good\n\nbad\n", ["input={src}"], "empty line(s) (line(s) 2)"),
    ("review\nfine\n", ["input={src}"], "has no column 'text' (columns: review)"),
    (None, ["input={src}"], "Input file not found"),
    ("good\n", ["input={src}", "text=also"], "Give exactly one of text="),
    ("good\n", ["input={src}", "backend=onnx-int8", "ckpt={ckpt}"], "Give exactly one of ckpt="),
])
def test_bad_predict_input_is_one_clear_line_and_no_file(exported, trained_run, tmp_path, caplog, content, args,
                                                         message):
    src = tmp_path / ("in.csv" if content and content.startswith("review") else "in.txt")
    if content is not None:
        src.write_text(content)
    out = tmp_path / "predictions.csv"
    formatted = [a.format(src=src, ckpt=trained_run / "checkpoints" / "last.ckpt") for a in args]
    with caplog.at_level(logging.ERROR):
        assert predict_main([f"model={exported}", *formatted, f"out={out}"]) == 2
    assert message in caplog.text and "Traceback" not in caplog.text
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def _make_predict_args(venv: Path, *variables: str) -> list[str]:
    """The arguments `make predict <variables>` hands to src.cli.predict, through make and the shell for real
    (VENV's python swapped for a printer of its argv: the recipe is tested, predict itself runs in-process)."""
    printer = venv / "bin" / "python"
    printer.parent.mkdir(parents=True)
    printer.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[3:]))\n")
    printer.chmod(0o755)
    result = subprocess.run(["make", "--no-print-directory", "predict", f"VENV={venv}", *variables],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_make_predict_passes_text_with_quotes_through(exported, tmp_path):
    text = '- He said "wow", (and left): it\'s [well] spent'
    args = _make_predict_args(tmp_path / "venv", f"MODEL={exported}", f"TEXT={text}")
    assert args == [f"model={exported}", f"text={text}"]


def test_predict_with_a_missing_checkpoint_or_export_says_which_is_not_found(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert predict_main([f"ckpt={tmp_path / 'nope.ckpt'}", "text=Fine."]) == 2
        assert predict_main([f"model={tmp_path / 'nope'}", "text=Fine."]) == 2
    assert "Checkpoint not found: " in caplog.text and "not an exported model directory" not in caplog.text
    assert f"Exported model directory not found: {tmp_path / 'nope'}. Create one with `make export" in caplog.text


def test_make_predict_takes_column_and_keeps_the_other_columns(exported, tmp_path):
    pd.DataFrame({"id": [7, 3], "review": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
    args = _make_predict_args(tmp_path / "venv", f"MODEL={exported}", f"INPUT={tmp_path / 'in.csv'}", "COLUMN=review",
                              f"OUT={tmp_path / 'out.csv'}")
    assert predict_main(args) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["id"].tolist() == [7, 3] and out["text"].tolist() == TEXTS
    assert list(out.columns) == ["id", "text", "label", "prob_negative", "prob_positive"]
