"""A run's checkpoint as a Hugging Face `save_pretrained` directory, and the loader that serves it.

    export_model(ckpt, out) -> out/: config.json (id2label / label2id from the run's labels.json),
    model.safetensors, tokenizer files (a generic fast tokenizer whose normalizer carries the run's cleaning:
    src.serving.tokenizer_cleaning), preprocessing.json (the run's cleaning and truncation), labels.json,
    README.md (model card)

LoRA / AdaLoRA adapters are merged; a distilled student exports like any model. Transformers 5 has no
per-layer head count, so heads / FFN neurons removed by structured pruning are written as the zeros they are in
the checkpoint (plain transformers computes the same function at full size) and listed in config.json under
`lab_pruned_units`; `load_exported` removes them again. The directory is written next to `out` and moved into
place when complete, so a failed export leaves nothing half-written.
"""

import os
import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from peft import PeftModel
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from src import rundir
from src.compression.structure import UnitRecord, normalize_record, remove_units
from src.datamodules.preprocessing import PREPROCESSING_FILE, Preprocessing
from src.errors import ConfigError, HubUnreachableError
from src.modules.finetuning import merged
from src.modules.text_classifier import TextClassifier
from src.run import Run
from src.serving.model_card import model_card, test_scores
from src.serving.tokenizer_cleaning import client_tokenizer, lab_tokenizer

UNITS_KEY = "lab_pruned_units"


@dataclass
class ExportedModel:
    """What serving needs: the model (eval mode, CPU), its tokenizer, the run's preprocessing and label names."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    preprocessing: Preprocessing
    label_names: list[str]


def with_labels(model: PreTrainedModel, names: list[str]) -> PreTrainedModel:
    """Set id2label / label2id in the model config, so `transformers.pipeline` shows the label names."""
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}
    return model


def inference_model(module: TextClassifier) -> PreTrainedModel:
    """The checkpoint's transformers model with adapters merged, in eval mode."""
    if isinstance(module.model, PeftModel) and module.model.peft_type == "PROMPT_TUNING":
        raise ConfigError("A prompt-tuned model has learned virtual tokens, not weights to merge, so it cannot "
                          "be exported as a plain transformers model; use `make merge` for a peft adapter directory.")
    return merged(module.model).eval()


def run_summary(ckpt: Path, run_dir: Path, units: dict[str, Any]) -> dict[str, Any]:
    """What the model card reports of the run: validation scores, test scores with CIs, pruned units."""
    metrics = rundir.read_metrics(run_dir) if rundir.is_finished(run_dir) else {}
    probs, labels = (rundir.read_predictions(run_dir) if rundir.predictions_path(run_dir, "test").is_file()
                     else (None, None))
    return {"checkpoint": str(ckpt), "tested_checkpoint": metrics.get("best_checkpoint"),
            "validation": metrics.get("validation", {}), "pruned_units": units,
            "test_scores": test_scores(probs, labels), "test_examples": 0 if labels is None else len(labels)}


def served_model(run: Run, remove_pruned: bool = True) -> tuple[ExportedModel, UnitRecord]:
    """The run's checkpoint ready to serve (adapters merged, the run's labels and preprocessing) and its pruned
    units (`remove_pruned=False` keeps them in place as zeros)."""
    preprocessing = run.preprocessing  # the run's config first: its errors come before the model is built
    module = run.load_classifier(remove_pruned)
    model = with_labels(inference_model(module), run.label_names)
    return ExportedModel(model, run.tokenizer, preprocessing, run.label_names), module.pruned_units


def write_pretrained(run: Run, directory: Path, name: str, command: str) -> ExportedModel:
    """Write the save_pretrained directory of the run's checkpoint into `directory`; returns the model, pruned
    units removed."""
    served, record = served_model(run, remove_pruned=False)
    units = {kind: {str(k): v for k, v in found.items()} for kind, found in record.items() if found}
    if units:
        setattr(served.model.config, UNITS_KEY, units)
    served.model.save_pretrained(directory)  # safetensors
    served.tokenizer.model_max_length = served.preprocessing.max_length  # pipeline(truncation=True) cuts there
    client, prepended = client_tokenizer(served.tokenizer, served.preprocessing.cleaning)
    client.save_pretrained(directory)
    replace(served.preprocessing, cleaning_normalizers=prepended).save(directory)
    rundir.save_labels(directory, served.label_names)
    summary = run_summary(run.checkpoint, run.run_dir, units)
    (directory / "README.md").write_text(model_card(run.cfg, name, served.label_names, summary,
                                                    {"export": command}))
    remove_units(served.model, record)
    return served


def staging_directory(out: Path) -> Path:
    """An empty temporary directory next to `out` (same file system, so the final move is a rename)."""
    if out.is_file() or (out.is_dir() and not (out / PREPROCESSING_FILE).is_file() and any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not a model exported by `make export`; choose another OUT.")
    staging = out.parent / f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir(parents=True)  # mkdir, not tempfile.mkdtemp (mode 0700): the export gets the user's umask
    return staging


def publish_directory(staging: Path, out: Path) -> Path:
    """Move the complete `staging` directory to `out`, replacing an earlier export there; its files get the
    user's umask (the safetensors writer creates them 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in staging.iterdir():
        path.chmod(0o666 & ~umask)
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return out


def load_exported(directory: Path) -> ExportedModel:
    """An exported directory ready to serve: pruned units removed again, the run's preprocessing and labels."""
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{directory} is not an exported model directory (no config.json); "
                          "create one with `make export CKPT=<.ckpt> OUT=<directory>`.")
    preprocessing = Preprocessing.load(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    remove_units(model, normalize_record(getattr(model.config, UNITS_KEY, None)))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return ExportedModel(model, lab_tokenizer(directory, preprocessing.cleaning_normalizers), preprocessing, names)



def export_model(ckpt: Path, out: Path, onnx: bool = False) -> Path:
    """The save_pretrained directory of `ckpt` at `out` (with model.onnx + model.int8.onnx when `onnx`)."""
    from src.compression.onnx_export import write_onnx

    out = Path(out)
    staging = staging_directory(out)
    try:
        command = f"make export CKPT={ckpt} OUT={out}" + (" FORMAT=onnx" if onnx else "")
        served = write_pretrained(Run.open(ckpt), staging, out.name, command)
        if onnx:
            write_onnx(served.model, served.tokenizer, staging)
        return publish_directory(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def push_to_hub(directory: Path, repo_id: str, private: bool = True) -> str:
    """Upload an exported directory to the Hugging Face Hub as model repository `repo_id`; returns its URL."""
    from huggingface_hub import HfApi, get_token

    from src.hub import hub_reachable

    if not hub_reachable():
        raise HubUnreachableError(f"Cannot push {directory} to {repo_id}: the Hugging Face Hub is unreachable from "
                                  "this machine (or HF_HUB_OFFLINE is set). The export itself is complete; push it "
                                  "later from a machine with network access.")
    if get_token() is None:
        raise ConfigError(f"Cannot push to {repo_id}: no Hugging Face token. Run `hf auth login` or set HF_TOKEN.")
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    return str(api.upload_folder(repo_id=repo_id, folder_path=str(directory), commit_message="Export from the lab"))
