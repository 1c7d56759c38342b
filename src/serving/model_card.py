"""The model card of an exported run: README.md in the Hugging Face Hub's format (YAML metadata + Markdown).

Metadata and validation of its structure come from `huggingface_hub.ModelCard` / `ModelCardData`; the body
states where the model came from: base model, data and subset, commands, the selection split, test metrics
with 95 % bootstrap CIs over the test examples, compression, and the run's full config.
"""

from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from omegaconf import DictConfig, OmegaConf

from src.experiments.stats import bootstrap_metric

CARD_METRICS = {"test/acc": "accuracy", "test/f1_macro": "f1"}


def test_scores(probs: np.ndarray | None, labels: np.ndarray | None) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, CI low, CI high)} on the run's test predictions (empty when it has none)."""
    if probs is None or labels is None or len(labels) < 2:
        return {}
    return {metric: bootstrap_metric(labels, probs, metric) for metric in CARD_METRICS}


def _is_hub_id(name: str) -> bool:
    """A Hub repository id (`owner/name`) rather than a local path."""
    return name.count("/") == 1 and not Path(name).expanduser().exists()


def card_data(cfg: DictConfig, name: str, scores: dict[str, tuple[float, float, float]]) -> ModelCardData:
    """The YAML metadata: library, task, base model and dataset (when they are Hub ids), test results."""
    data = cfg.data
    dataset = data.hub_name if data.source == "hub" else data.name
    results = [EvalResult(task_type="text-classification", dataset_type=dataset, dataset_name=data.name,
                          dataset_split=str(data.test_split), metric_type=CARD_METRICS[metric],
                          metric_value=round(value, 4), metric_name=metric)
               for metric, (value, _, _) in scores.items()]
    base = cfg.model.name_or_path
    return ModelCardData(library_name="transformers", pipeline_tag="text-classification", model_name=name,
                         base_model=base if cfg.model.pretrained and _is_hub_id(base) else None,
                         datasets=[dataset] if data.source == "hub" else None, metrics=list(CARD_METRICS.values()),
                         tags=["text-classification", "llm-optimization-lab"], eval_results=results or None)


def _subset(data: DictConfig) -> str:
    """The rows a run used, in words."""
    limits = ", ".join(f"{split} {data[f'limit_{key}'] if data[f'limit_{key}'] is not None else 'all'}"
                       for split, key in (("train", "train"), ("validation", "val"), ("test", "test")))
    fractions = f"; train class fractions {list(data.train_class_fractions)}" if data.train_class_fractions else ""
    validation = (f"split `{data.val_split}`" if data.val_split
                  else f"a stratified {data.val_size:.0%} of `{data.train_split}`")
    return f"rows used (stratified, seed-fixed subsets): {limits}{fractions}; validation is {validation}"


def _metrics_table(scores: dict[str, tuple[float, float, float]], n: int) -> str:
    if not scores:
        return "The run has no test predictions (predictions_test.csv), so no test metrics are given.\n"
    rows = "".join(f"| {metric} | {value:.4f} | [{low:.4f}, {high:.4f}] |\n"
                   for metric, (value, low, high) in scores.items())
    return (f"| metric | value | 95 % CI |\n|---|---|---|\n{rows}\nOn {n} test examples; CI: percentile bootstrap "
            "over the test examples (1,000 resamples).\n")


def _selection(cfg: DictConfig, validation: dict[str, float]) -> str:
    """Which split chose the checkpoint, on which metric, and the validation scores."""
    checkpoint = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    monitor = checkpoint.get("monitor")
    rule = (f"the checkpoint with the best `{monitor}` ({checkpoint.get('mode', 'min')}) on the validation split"
            if monitor else "the last checkpoint (no checkpoint selection configured)")
    scores = ", ".join(f"{k} {v:.4f}" for k, v in sorted(validation.items()) if "per_class" not in k)
    return (f"Selection: {rule}. The test split was not used for any choice."
            f"{' Validation: ' + scores if scores else ''}\n")


def _tested(run: dict[str, Any]) -> str:
    """Which checkpoint the test metrics belong to, when the run tested another one than this export."""
    tested = run.get("tested_checkpoint")
    if not tested or Path(tested).resolve() == Path(run["checkpoint"]).resolve():
        return ""
    return (f"The test metrics are the run's, of its selected checkpoint `{tested}`; this export is "
            f"`{run['checkpoint']}` (`make eval CKPT={run['checkpoint']}` scores it).\n")


def model_card(cfg: DictConfig, name: str, labels: list[str], run: dict[str, Any], commands: dict[str, str]) -> str:
    """README.md of an exported model; `run` holds metrics.json (`validation`), the test scores and example
    count, the pruned units, the source checkpoint and the one the run tested."""
    data, model = cfg.data, cfg.model
    source = data.hub_name if data.source == "hub" else data.path
    cleaning = [step for step, on in data.cleaning.items() if on] or ["none"]
    units = run.get("pruned_units") or {}
    compression = [f"fine-tuning mode `{model.finetune.mode}`"
                   + (" (adapter merged into the weights)" if model.finetune.mode in ("lora", "adalora") else "")]
    if model.get("distillation", {}).get("teacher_ckpt"):
        compression.append(f"distilled from the teacher `{model.distillation.teacher_ckpt}`")
    if units.get("heads") or units.get("ffn"):
        compression.append(f"structured pruning removed {sum(map(len, units.get('heads', {}).values()))} attention "
                           f"heads and {sum(map(len, units.get('ffn', {}).values()))} FFN neurons (config "
                           "`lab_pruned_units`): they are zeros in these weights, so plain transformers computes "
                           "the same function at full size; `src.serving.load_exported` and the ONNX model remove "
                           "them for real")
    body = f"""
# {name}

A `{model.name_or_path}` sequence classifier ({'pretrained' if model.pretrained else 'random init'}) fine-tuned
by the LLM Optimization Lab on **{data.name}** ({data.source}: `{source}`),
labels {', '.join(f'`{label}`' for label in labels)}; {_subset(data)}.

## Use

```python
from transformers import pipeline
classifier = pipeline("text-classification", model="path/to/this/directory")
classifier("A moving, beautifully shot film.")
```

Training cleaned every text first (steps: {', '.join(cleaning)}) and cut it to {data.max_length} tokens
(`{data.truncation}` truncation); `preprocessing.json` holds these settings. The pipeline above does not clean;
`make predict MODEL=<this directory> INPUT=...` (or `src.serving.load_exported`) applies them as training did.

## Evaluation

{_metrics_table(run.get("test_scores", {}), run.get("test_examples", 0))}{_tested(run)}
{_selection(cfg, run.get("validation", {}))}
## Provenance

- Source checkpoint: `{run.get('checkpoint')}` (experiment `{cfg.experiment}`, seed {cfg.seed})
- Training: `python -m src.train` with the config below (the run's config.yaml)
- Export: `{commands.get('export', 'make export')}`
- Compression: {'; '.join(compression)}

<details><summary>Run config</summary>

```yaml
{OmegaConf.to_yaml(cfg, resolve=True).strip()}
```

</details>
"""
    card = ModelCard(f"---\n{card_data(cfg, name, run.get('test_scores', {})).to_yaml()}\n---\n{body}")
    return str(card)
