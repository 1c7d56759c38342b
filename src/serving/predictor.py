"""Labels and class probabilities for raw texts, on PyTorch (eager or static int8 compiled by Inductor) or ONNX
Runtime, from a checkpoint or an export.

Texts are cleaned and truncated as the run did (preprocessing.json), sorted by token length so that each batch
pads little (DataCollatorWithPadding pads to the batch's longest text), and returned in input order.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoConfig, DataCollatorWithPadding, PreTrainedTokenizerBase

from src.builders import build_datamodule
from src.compression.inductor_int8 import InductorClassifier, calibrated_int8, validation_batches
from src.compression.onnx_export import INT8_FILE, ONNX_FILE, onnx_logits, session
from src.datamodules.preprocessing import Preprocessing
from src.errors import ConfigError, EmptyTextError
from src.run import Run
from src.serving.pretrained import load_exported, served_model
from src.serving.tokenizer_cleaning import lab_tokenizer

BACKENDS = {"torch": None, "onnx": ONNX_FILE, "onnx-int8": INT8_FILE, "inductor-int8": None, "inductor-int8-bf16": None}


@dataclass
class Predictor:
    """A tokenizer, the run's preprocessing, label names and a logits function (PyTorch model or ORT session)."""

    tokenizer: PreTrainedTokenizerBase
    preprocessing: Preprocessing
    label_names: list[str]
    runner: Any  # a PreTrainedModel (torch), an InductorClassifier (inductor-int8*) or an ORT InferenceSession

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one padded batch."""
        if isinstance(self.runner, nn.Module):
            with torch.inference_mode():
                return self.runner(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()
        return onnx_logits(self.runner, batch)

    def predict(self, texts: list[str], batch_size: int = 32, progress: bool = True,
                pairs: list[str] | None = None) -> np.ndarray:
        """Class probabilities [len(texts), classes] of the texts (or the text pairs texts[i] + pairs[i]), in input
        order."""
        if not texts:
            raise EmptyTextError("No input texts: the input is empty.")
        encoded = self.preprocessing.encode(self.tokenizer, texts, pairs)
        rows = [dict(zip(encoded, values, strict=True)) for values in zip(*encoded.values(), strict=True)]
        order = np.argsort([-len(row["input_ids"]) for row in rows], kind="stable")  # longest first
        collator = DataCollatorWithPadding(self.tokenizer, return_tensors="np")
        probs = np.zeros((len(rows), len(self.label_names)), dtype=np.float32)
        with tqdm(total=len(rows), unit="text", desc="Predicting", disable=not progress) as bar:
            for start in range(0, len(rows), batch_size):
                index = order[start:start + batch_size]
                batch = {k: np.asarray(v, dtype=np.int64) for k, v in collator([rows[i] for i in index]).items()}
                probs[index] = torch.from_numpy(self.logits(batch)).softmax(-1).numpy()
                bar.update(len(index))
        return probs


def load_predictor(source: Path, backend: str = "torch", threads: int | None = None) -> Predictor:
    """A predictor from a .ckpt (backend torch or inductor-int8[-bf16]) or an exported directory (torch, onnx or
    onnx-int8)."""
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend '{backend}'. Use one of: {', '.join(BACKENDS)}.")
    source = Path(source)
    if backend.startswith("inductor"):
        return inductor_predictor(source, bf16=backend.endswith("bf16"))
    if source.is_file():
        if backend != "torch":
            raise ConfigError(f"Backend {backend} runs an exported ONNX model: first `make export CKPT={source} "
                              "OUT=<dir> FORMAT=onnx`, then predict with MODEL=<dir>.")
        served = served_model(Run.open(source))[0]
        return Predictor(served.tokenizer, served.preprocessing, served.label_names, served.model)
    if backend == "torch":
        served = load_exported(source)
        return Predictor(served.tokenizer, served.preprocessing, served.label_names, served.model)
    return onnx_predictor(source, BACKENDS[backend], threads)


def onnx_predictor(directory: Path, filename: str, threads: int | None) -> Predictor:
    """A predictor on the ONNX Runtime session of `directory/filename` (written by `make export FORMAT=onnx`)."""
    path = directory / filename
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: export the ONNX model first "
                          f"(make export CKPT=<.ckpt> OUT={directory} FORMAT=onnx).")
    config = AutoConfig.from_pretrained(directory)
    names = [config.id2label[i] for i in range(config.num_labels)]
    preprocessing = Preprocessing.load(directory)
    return Predictor(lab_tokenizer(directory, preprocessing.cleaning_normalizers), preprocessing, names,
                     session(path, threads))


def inductor_predictor(ckpt: Path, bf16: bool) -> Predictor:
    """A predictor on the checkpoint's static int8 graph compiled by Inductor, calibrated on its run's validation
    split (which is why it needs CKPT=, not an export); built in tens of seconds, then fast for large inputs."""
    if not ckpt.is_file():
        raise ConfigError(f"Backend inductor-int8 is built from a run's checkpoint and calibrated on its validation "
                          f"split: pass CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt, not {ckpt}.")
    run = Run.open(ckpt)
    served = served_model(run)[0]
    datamodule = build_datamodule(run.cfg, run.tokenizer)
    datamodule.setup()
    graph = calibrated_int8(served.model, validation_batches(datamodule), run.preprocessing.max_length)
    runner = InductorClassifier(graph, run.preprocessing.max_length, served.model.config.pad_token_id or 0, bf16)
    return Predictor(served.tokenizer, served.preprocessing, served.label_names, runner)
