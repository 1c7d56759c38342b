"""`make export`: a save_pretrained directory that plain transformers and `pipeline()` load with the run's labels
and predictions, a Hub-format model card, merged LoRA, removed heads, and a parity-checked ONNX model."""

import json
import os
import shlex
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from src import rundir
from src.builders import build_model
from src.callbacks.qat import QuantizationAwareTraining
from src.compression.onnx_export import onnx_logits, session
from src.compression.structure import head_slices
from src.compression.variants import load_variant
from src.config import compose, compose_for_checkpoint, to_yaml
from src.datamodules.cleaning import STEPS, clean_text
from src.datamodules.text_classification import TextClassificationDataModule
from src.errors import ConfigError, HubUnreachableError
from src.modules.model_builder import load_tokenizer
from src.modules.text_classifier import TextClassifier
from src.reporting.stats import bootstrap_metric
from src.serving.model_card import hub_id, train_command
from src.serving.predictor import load_predictor
from src.serving.pretrained import export_model, load_exported, push_to_hub
from src.serving.text_io import write_table
from src.serving.tokenizer_cleaning import cleaning_normalizer
from src.training import evaluate
from tests.compression.helpers import logits, real_batch, save_plain_checkpoint
from tests.training_helpers import build_module, quick_fit


def eval_data(run_dir: Path) -> TextClassificationDataModule:
    """The run's test split as `make eval` builds it (cleaned texts and tokenized rows in the same order)."""
    cfg = compose_for_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("test")
    return datamodule


def test_pipeline_gives_run_labels_and_eval_predictions(trained_run, exported):
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    data = eval_data(trained_run)
    module = TextClassifier.from_checkpoint(ckpt).eval()
    with torch.inference_mode():
        expected = torch.cat([module(batch).argmax(-1) for batch in data.test_dataloader()]).numpy()
    classifier = pipeline("text-classification", model=str(exported), device="cpu")
    found = classifier(list(data.texts["test"]["text"]), truncation=True, batch_size=8)
    assert {row["label"] for row in found} <= {"negative", "positive"}
    names = json.loads((trained_run / "labels.json").read_text())["id2label"]
    assert [row["label"] for row in found] == [names[str(i)] for i in expected]
    labels = np.asarray(data.texts["test"]["label"])
    accuracy = float((np.array([row["label"] == names[str(y)] for row, y in zip(found, labels, strict=True)])).mean())
    assert evaluate(ckpt, [], trained_run / "eval.json")["test"]["test/acc"] == pytest.approx(accuracy)


def test_model_card_is_hub_format_with_ci_and_selection_split(trained_run, exported):
    card = ModelCard.load(exported / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    probs, labels = rundir.read_predictions(trained_run)
    value, low, high = bootstrap_metric(labels, probs, "test/acc")
    accuracy = next(r for r in card.data.eval_results if r.metric_type == "accuracy")
    assert accuracy.metric_value == round(value, 4) and accuracy.dataset_split == "test"
    assert f"| test/acc | {value:.4f} | [{low:.4f}, {high:.4f}] |" in card.text
    assert "best `val/f1_macro` (max) on the validation split" in card.text
    assert "experiment: imdb_tiny" in card.text and "train 64, validation 32, test 32" in card.text
    assert json.loads((exported / "preprocessing.json").read_text())["max_length"] == 64


def test_onnx_logits_match_pytorch_and_int8_agrees(trained_run, exported):
    data = eval_data(trained_run)
    served = load_exported(exported)
    rows = data.splits["test"].remove_columns(["length", "labels"])
    batch = {k: v.numpy() for k, v in data.collator([rows[i] for i in range(len(rows))]).items()}
    with torch.inference_mode():
        reference = served.model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()
    np.testing.assert_allclose(onnx_logits(session(exported / "model.onnx"), batch), reference, atol=1e-4, rtol=0)
    int8 = onnx_logits(session(exported / "model.int8.onnx"), batch)
    assert (int8.argmax(-1) == reference.argmax(-1)).mean() >= 0.9
    assert (exported / "model.int8.onnx").stat().st_size < 0.5 * (exported / "model.onnx").stat().st_size
    report = json.loads((exported / "onnx.json").read_text())
    assert report["fp32"]["max_abs_diff"] <= 1e-4


def _saved_run(cfg, module: TextClassifier, run_dir: Path, units: dict | None = None) -> Path:
    """A run directory with a checkpoint (and its pruned-unit record), config.yaml and labels.json."""
    ckpt = save_plain_checkpoint(module, run_dir / "checkpoints" / "last.ckpt")
    if units:
        torch.save({**torch.load(ckpt, weights_only=True), "compression": {"units": units}}, ckpt)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    rundir.save_labels(run_dir, list(cfg.data.label_names))
    return ckpt


@pytest.mark.parametrize("mode", ["lora", "adalora"])
def test_lora_export_is_merged_and_loads_in_plain_transformers(make_cfg, tmp_path, mode):
    cfg = make_cfg(f"model.finetune.mode={mode}", "data.limit_train=64", "model.finetune.adalora.tinit=1",
                   "model.finetune.adalora.tfinal=1")
    module = quick_fit(cfg, max_steps=4)
    batch = real_batch(cfg, 16)
    expected = logits(module, batch)
    out = export_model(_saved_run(cfg, module, tmp_path / "run"), tmp_path / "lora")
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert not [name for name, _ in plain.named_parameters() if "lora" in name]
    assert not (out / "adapter_config.json").exists()
    with torch.inference_mode():
        torch.testing.assert_close(plain(**{k: v for k, v in batch.items() if k != "labels"}).logits, expected,
                                   atol=1e-5, rtol=1e-4)
    assert plain.config.id2label == {0: "negative", 1: "positive"}


def test_head_pruned_export_loads_in_plain_transformers_and_keeps_heads_removed(make_cfg, tmp_path):
    cfg = make_cfg()
    module = build_module(cfg)
    attention = module.model.bert.encoder.layer[0].attention
    rows = head_slices(attention.self, [1])
    with torch.no_grad():  # what structured pruning leaves in a checkpoint: head 1 of layer 0 all zeros
        for proj in (attention.self.query, attention.self.key, attention.self.value):
            proj.weight[rows] = 0
            proj.bias[rows] = 0
        attention.output.dense.weight[:, rows] = 0
    batch = {k: v for k, v in real_batch(cfg, 16).items() if k != "labels"}
    with torch.inference_mode():
        expected = module.eval().model(**batch).logits
    out = export_model(_saved_run(cfg, module, tmp_path / "run", {"heads": {0: [1]}}), tmp_path / "heads", onnx=True)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    served = load_exported(out)
    assert served.model.bert.encoder.layer[0].attention.self.num_attention_heads == 1
    assert plain.config.lab_pruned_units == {"heads": {"0": [1]}}
    with torch.inference_mode():
        torch.testing.assert_close(plain(**batch).logits, expected)
        torch.testing.assert_close(served.model(**batch).logits, expected, atol=1e-6, rtol=1e-5)
    numpy_batch = {k: v.numpy() for k, v in batch.items()}
    np.testing.assert_allclose(onnx_logits(session(out / "model.onnx"), numpy_batch), expected.numpy(), atol=1e-4)


def test_export_refuses_to_overwrite_a_foreign_directory_and_leaves_nothing_behind(trained_run, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a model exported"):
        export_model(trained_run / "checkpoints" / "last.ckpt", foreign)
    with pytest.raises(ConfigError, match="Checkpoint not found"):
        export_model(tmp_path / "missing.ckpt", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and (foreign / "notes.txt").read_text() == "keep me"


def test_distilled_student_exports_like_any_model(make_cfg, tmp_path):
    teacher = save_plain_checkpoint(build_module(make_cfg()), tmp_path / "teacher.ckpt")
    cfg = make_cfg(f"model.distillation.teacher_ckpt={teacher}", "model.distillation.student_layers=[1]")
    student = build_model(cfg)
    batch = real_batch(cfg, 8)
    out = export_model(_saved_run(cfg, student, tmp_path / "run"), tmp_path / "student")
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert plain.config.num_hidden_layers == 1
    with torch.inference_mode():
        torch.testing.assert_close(plain(**{k: v for k, v in batch.items() if k != "labels"}).logits,
                                   logits(student, batch))
    assert f"distilled from the teacher `{teacher}`" in (out / "README.md").read_text()


def test_push_to_hub_fails_clearly_offline_or_without_a_token(exported, monkeypatch):
    with pytest.raises(HubUnreachableError, match="unreachable.*export itself is complete"):
        push_to_hub(exported, "someone/model")  # tests run with HF_HUB_OFFLINE=1
    monkeypatch.setattr("src.hub.hub_reachable", lambda: True)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(ConfigError, match="no Hugging Face token"):
        push_to_hub(exported, "someone/model")


def test_qat_weights_carry_into_the_onnx_int8_model(make_cfg, tmp_path):
    cfg = make_cfg("data.limit_train=128")
    callback = QuantizationAwareTraining(tmp_path / "run", start_epoch=0)
    module = quick_fit(cfg, callbacks=[callback], max_steps=8)
    out = export_model(_saved_run(cfg, module, tmp_path / "run"), tmp_path / "qat", onnx=True)
    batch = real_batch(cfg, 64)
    torch_int8 = logits(load_variant(callback.export_path), batch).numpy()
    onnx_int8 = onnx_logits(session(out / "model.int8.onnx"), {k: v.numpy() for k, v in batch.items() if k != "labels"})
    assert (onnx_int8.argmax(-1) == torch_int8.argmax(-1)).mean() >= 0.95
    np.testing.assert_allclose(onnx_int8, logits(module, batch).numpy(), atol=5e-3)  # int8 rounding of fp32 logits


def test_new_models_carry_the_label_names(make_cfg):
    assert build_module(make_cfg()).model.config.id2label == {0: "negative", 1: "positive"}


def test_gpt2_exports_to_onnx_with_parity(make_cfg, tmp_path):
    cfg = make_cfg("model=tiny_gpt2")
    module = build_module(cfg)
    out = export_model(_saved_run(cfg, module, tmp_path / "run"), tmp_path / "gpt2", onnx=True)
    batch = {k: v for k, v in real_batch(cfg, 16).items() if k != "labels"}  # right-padded, pad = eos
    np.testing.assert_allclose(onnx_logits(session(out / "model.onnx"), {k: v.numpy() for k, v in batch.items()}),
                               logits(module, batch).numpy(), atol=1e-4, rtol=0)


def test_prompt_tuned_model_is_refused_with_the_alternative(make_cfg, tmp_path):
    cfg = make_cfg("model.finetune.mode=prompt")
    with pytest.raises(ConfigError, match="prompt-tuned model .* use `make merge`"):
        export_model(_saved_run(cfg, build_module(cfg), tmp_path / "run"), tmp_path / "prompt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def html_reviews(count: int) -> list[str]:
    """Real IMDB test reviews with a `<br />` within their first 64 tokens (inside the tiny run's max_length)."""
    path = Path(compose(["experiment=imdb_tiny"]).data.path) / "test.parquet"
    texts = pd.read_parquet(path, columns=["text"])["text"]
    return [text for text in texts if 0 < text.find("<br />") < 200][:count]


def test_pipeline_and_onnx_runtime_agree_with_make_predict_on_real_reviews_with_html(exported):
    texts = html_reviews(20)
    predictor = load_predictor(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)  # what pipeline() and a plain ONNX Runtime client load
    assert tokenizer(texts, truncation=True)["input_ids"] == predictor.preprocessing.encode(
        predictor.tokenizer, texts)["input_ids"]
    expected = predictor.predict(texts, progress=False)
    found = pipeline("text-classification", model=str(exported), device="cpu", top_k=None)(texts, truncation=True)
    scores = np.array([[{row["label"]: row["score"] for row in rows}[name] for name in predictor.label_names]
                       for rows in found])
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)
    assert (scores.argmax(1) == expected.argmax(1)).all()
    batch = dict(tokenizer(texts, truncation=True, padding=True, return_tensors="np"))
    onnx_probs = torch.from_numpy(onnx_logits(session(exported / "model.onnx"), batch)).softmax(-1).numpy()
    np.testing.assert_allclose(onnx_probs, expected, atol=1e-5, rtol=0)


def test_cleaning_normalizer_does_what_the_python_cleaning_does():
    steps = {step: step != "stop_words" for step in STEPS}
    normalizer = cleaning_normalizer(steps)
    crafted = ["Visit https://x.org/a?b=1 or WWW.example.com, mail a.b+c@d-e.co.uk!!! &amp;lt; <i>Great</i>",
               "\ufb01ne\u200bfilm\u3000\t\x1c two\x85lines ☺☺ é\u0301 ＦＵＬＬ ½ «quoted» ... ?? -- <br/>"]
    texts = crafted + list(pd.read_parquet(Path(compose(["experiment=imdb_tiny"]).data.path) / "test.parquet",
                                           columns=["text"])["text"][:300])
    assert [normalizer.normalize_str(text) for text in texts] == [clean_text(text, steps) for text in texts]


def test_model_card_commands_run_and_name_the_hub_base_model(trained_run, exported):
    card = ModelCard.load(exported / "README.md").text
    assert f"make export CKPT={trained_run / 'checkpoints' / 'last.ckpt'} OUT={exported} FORMAT=onnx" in card
    assert "python -m src" not in card
    cfg = compose_for_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    assert f"- Training: `{train_command(cfg)}`" in card and "make train EXP=imdb_tiny ARGS=" in card
    assert "`repeated_punctuation`: runs of ASCII punctuation" in card and "`html`: tags are removed" in card
    assert hub_id(compose(["model=minilm"]).model.name_or_path) == "sentence-transformers/all-MiniLM-L6-v2"


def test_exports_and_predictions_are_created_with_the_users_umask(trained_run, tmp_path):
    previous = os.umask(0o022)
    try:
        out = export_model(trained_run / "checkpoints" / "last.ckpt", tmp_path / "export", onnx=True)
        written = write_table(pd.DataFrame({"text": ["a"]}), tmp_path / "predictions.csv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(path.stat().st_mode) for path in [*out.iterdir(), written]} == {0o644}


@pytest.mark.parametrize("overrides", [
    ["experiment=imdb_tiny", "model=tiny_gpt2", "model.finetune.mode=lora", "data.label_names=[bad,good]",
     "notes=my run's notes", "seed=3"],
    ["seed=5", "trainer.max_epochs=1"],  # no experiment preset: python -m src.cli.train
])
def test_the_model_cards_train_command_composes_to_the_runs_config(overrides):
    cfg = compose(overrides)
    words = shlex.split(train_command(cfg))  # as the shell splits the command, then make's recipe line its ARGS
    args = ([f"experiment={words[2].split('=')[1]}", *shlex.split(words[3].split("=", 1)[1])]
            if words[0] == "make" else words[3:])
    assert to_yaml(compose(args)) == to_yaml(cfg)
