"""The data report: what cleaning, balancing, tokenization and batching do to a configured dataset.

`build_report` measures a prepared `TextClassificationDataModule`; `write_report` renders it as
report.md + report.json + PNG figures; `data_report(cfg, datamodule)` does both for a run's data module and logs the
result to W&B when the logger is on (the library half of `python -m src.cli.data_report`).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import RandomSampler
from transformers import PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from src.config import to_object
from src.datamodules.balancing import class_counts
from src.datamodules.sources import label_array
from src.datamodules.text_classification import TextClassificationDataModule
from src.loggers import build_loggers, finishing_wandb
from src.rundir import atomic_write_text

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

DATA_REPORTS_ROOT = Path("reports") / "data"
PERCENTILES = (5, 25, 50, 75, 90, 95, 99)
TRUNCATION_LENGTHS = (128, 256, 512)


def token_lengths(texts: list[str], tokenizer: PreTrainedTokenizerBase, batch_size: int = 1000,
                  pairs: list[str] | None = None) -> np.ndarray:
    """Untruncated token counts (special tokens included; of the pair's one sequence when `pairs` holds the second
    texts), tokenized in batches to bound memory."""
    lengths: list[int] = []
    for start in range(0, len(texts), batch_size):
        second = None if pairs is None else pairs[start:start + batch_size]
        encoded = tokenizer(texts[start:start + batch_size], second, truncation=False, verbose=False)
        lengths.extend(len(ids) for ids in encoded["input_ids"])
    return np.asarray(lengths, dtype=np.int64)


def length_summary(lengths: np.ndarray, max_length: int) -> dict[str, Any]:
    """Percentiles, share of rows truncated (at max_length and the usual limits) and share of tokens lost."""
    limits = sorted({max_length, *TRUNCATION_LENGTHS})
    return {
        "mean": float(lengths.mean()),
        "percentiles": {f"p{q}": float(np.percentile(lengths, q)) for q in PERCENTILES},
        "max": int(lengths.max()),
        "truncated_share": {str(n): float((lengths > n).mean()) for n in limits},
        "tokens_lost_share": {str(n): float(np.maximum(lengths - n, 0).sum() / lengths.sum())
                              for n in limits},
    }


def padding_share(lengths: np.ndarray, order: list[int], batch_size: int) -> float:
    """Share of pad tokens when rows are batched in `order` and padded to each batch's longest row."""
    ordered = lengths[np.asarray(order)]
    padded = real = 0
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start:start + batch_size]
        padded += int(batch.max()) * len(batch)
        real += int(batch.sum())
    return 1.0 - real / padded


def padding_comparison(lengths: np.ndarray, max_length: int, batch_size: int, seed: int) -> dict[str, float]:
    """Padding share of a shuffled epoch vs a LengthGroupedSampler epoch (the datamodule's two samplers)."""
    truncated = np.minimum(lengths, max_length)
    shuffled = list(RandomSampler(range(len(lengths)), generator=torch.Generator().manual_seed(seed)))
    grouped = list(LengthGroupedSampler(batch_size, lengths=truncated.tolist(),
                                        generator=torch.Generator().manual_seed(seed)))
    random_share = padding_share(truncated, shuffled, batch_size)
    grouped_share = padding_share(truncated, grouped, batch_size)
    return {"shuffled": random_share, "length_grouped": grouped_share, "saved": random_share - grouped_share,
            "batch_size": batch_size}


def duplicate_counts(texts: dict[str, list[Any]]) -> dict[str, dict[str, int]]:
    """Rows repeating an earlier row of the same split, and distinct texts (or text pairs) shared by two splits."""
    within = {split: int(pd.Series(rows).duplicated().sum()) for split, rows in texts.items()}
    unique = {split: set(rows) for split, rows in texts.items()}
    across = {f"{a}/{b}": len(unique[a] & unique[b]) for a, b in combinations(texts, 2)}
    return {"within": within, "across": across}


def named_counts(counts: list[int], label_names: list[str]) -> dict[str, int]:
    return dict(zip(label_names, counts, strict=True))


def build_report(dm: TextClassificationDataModule) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """All report figures (a JSON-able dict) and the per-split token lengths, from the cleaned splits."""
    if not dm.texts:
        dm.prepare_texts()
    cfg, names = dm.cfg, list(dm.cfg.label_names)
    lengths = {split: token_lengths(ds["text"], dm.tokenizer, pairs=_pairs(ds)) for split, ds in dm.cleaned.items()}
    splits = {split: {"rows_loaded": stats.rows, "changed_by_cleaning": stats.changed,
                      "dropped_by_cleaning": stats.dropped, "rows": len(dm.cleaned[split]),
                      "class_counts": named_counts(class_counts(dm.cleaned[split], dm.num_classes), names),
                      "tokens": length_summary(lengths[split], cfg.max_length)}
              for split, stats in dm.cleaning_stats.items()}
    balancing = {"strategy": cfg.balancing.strategy, "augmentation": cfg.augmentation.mode,
                 **{stage: named_counts(counts, names) for stage, counts in dm.class_counts.items()}}
    if dm.balanced.class_weights is not None:
        balancing["class_weights"] = named_counts(dm.balanced.class_weights, names)
    weights = dm.row_sampling_weights()
    if weights is not None:
        balancing["expected_per_epoch"] = _expected_draws(weights, label_array(dm.texts["train"]), names)
    report = {
        "dataset": cfg.name, "tokenizer": dm.tokenizer.name_or_path, "max_length": cfg.max_length,
        "cleaning": {k: v for k, v in dict(cfg.cleaning).items() if v},
        "splits": splits, "balancing": balancing,
        "padding": padding_comparison(lengths["train"], cfg.max_length, cfg.batch_size, dm.seed),
        "duplicates": duplicate_counts({split: _rows(ds) for split, ds in dm.cleaned.items()}),
    }
    if len(cfg.text_columns) == 2:  # single-text reports keep their keys (committed ones re-render unchanged)
        report["text_pair"] = list(cfg.text_columns)
    return report, lengths


def _pairs(dataset: Dataset) -> list[str] | None:
    """The second texts of a text-pair split, None for single texts."""
    return dataset["text_pair"] if "text_pair" in dataset.column_names else None


def _rows(dataset: Dataset) -> list[Any]:
    """A split's texts, or its (text, text_pair) tuples."""
    pairs = _pairs(dataset)
    return dataset["text"] if pairs is None else list(zip(dataset["text"], pairs, strict=True))


def _expected_draws(weights: list[float], labels: np.ndarray, names: list[str]) -> dict[str, float]:
    """Expected rows per class in one epoch of the WeightedRandomSampler."""
    weights_arr = np.asarray(weights)
    share = np.bincount(labels, weights=weights_arr, minlength=len(names)) / weights_arr.sum()
    return {name: float(s * len(weights)) for name, s in zip(names, share, strict=True)}


def plot_lengths(lengths: dict[str, np.ndarray], max_length: int, path: Path) -> Path:
    """Token-length histogram per split, with the truncation limits marked."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    top = max(np.percentile(v, 99.5) for v in lengths.values())
    bins = np.linspace(0, top, 60)
    for split, values in lengths.items():
        ax.hist(np.minimum(values, top), bins=bins, density=True, histtype="step", linewidth=1.5,
                label=f"{split} (n={len(values):,})")
    for limit in sorted({max_length, *TRUNCATION_LENGTHS}):
        if limit <= top:
            ax.axvline(limit, color="black", linestyle="--" if limit == max_length else ":", linewidth=1)
            ax.text(limit, ax.get_ylim()[1] * 0.95, f" {limit}", fontsize=8)
    ax.set(xlabel="tokens per text (untruncated, clipped at p99.5)", ylabel="density", title="Token lengths")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_class_counts(balancing: dict[str, Any], path: Path) -> Path:
    """Train class counts before and after balancing (and after offline augmentation)."""
    stages = [s for s in ("before_balancing", "after_balancing", "final", "expected_per_epoch")
              if s in balancing]
    names = list(balancing["before_balancing"])
    x = np.arange(len(names))
    width = 0.8 / len(stages)
    fig = Figure(figsize=(max(6, 1.5 * len(names)), 4))
    ax = fig.subplots()
    for i, stage in enumerate(stages):
        ax.bar(x + i * width, [balancing[stage][n] for n in names], width, label=stage.replace("_", " "))
    ax.set_xticks(x + width * (len(stages) - 1) / 2, names)
    ax.set(ylabel="train rows", title=f"Class counts (balancing: {balancing['strategy']})")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
    ax.legend(loc="upper center", ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines: first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render_markdown(report: dict[str, Any], figures: dict[str, Path]) -> str:
    """report.md: one table per topic."""
    splits, balancing = report["splits"], report["balancing"]
    pad, dup = report["padding"], report["duplicates"]
    limits = list(next(iter(splits.values()))["tokens"]["truncated_share"])
    cleaning_rows = [[split, f"{s['rows_loaded']:,}",
                      f"{s['changed_by_cleaning']:,} ({s['changed_by_cleaning'] / s['rows_loaded']:.1%})",
                      f"{s['dropped_by_cleaning']:,}", f"{s['rows']:,}",
                      ", ".join(f"{k} {v:,}" for k, v in s["class_counts"].items())]
                     for split, s in splits.items()]
    tokens = {split: s["tokens"] for split, s in splits.items()}
    length_rows = [[split, f"{t['mean']:.0f}", *(f"{v:.0f}" for v in t["percentiles"].values()),
                    f"{t['max']:,}", *(f"{v:.1%}" for v in t["truncated_share"].values())]
                   for split, t in tokens.items()]
    names = list(balancing["before_balancing"])
    class_rows = [[stage.replace("_", " "), *(f"{counts[n]:,.6g}" for n in names)]
                  for stage, counts in balancing.items() if isinstance(counts, dict)]
    return "\n".join([
        f"# Data report: {report['dataset']}", "",
        f"Tokenizer `{report['tokenizer']}`, max_length {report['max_length']}. "
        f"Cleaning steps on: {', '.join(report['cleaning']) or 'none'}.{_pair_note(report)}", "",
        "## Splits and cleaning", "",
        *markdown_table(["split", "rows loaded", "changed by cleaning", "dropped (empty)", "rows", "classes"],
                        cleaning_rows),
        "", "## Token lengths (untruncated)", "",
        *markdown_table(["split", "mean", *(f"p{q}" for q in PERCENTILES), "max",
                         *(f"truncated at {n}" for n in limits)], length_rows),
        "", f"![token lengths]({figures['token_lengths'].name})", "",
        f"## Padding (train, batch size {pad['batch_size']}, truncated at max_length)", "",
        f"- shuffled batches: {pad['shuffled']:.1%} of tokens are padding",
        f"- length-grouped batches (`data.group_by_length=true`): {pad['length_grouped']:.1%}",
        f"- saved by grouping: {pad['saved']:.1%} of all batch tokens", "",
        f"## Train classes (balancing: {balancing['strategy']}, "
        f"augmentation: {balancing['augmentation']})", "",
        *markdown_table(["stage", *names], class_rows),
        "", f"![class counts]({figures['class_counts'].name})", "",
        "## Duplicate texts (after cleaning)", "",
        "- repeated rows within a split: " + ", ".join(f"{k} {v:,}" for k, v in dup["within"].items()),
        "- distinct texts shared by two splits: " + ", ".join(f"{k} {v:,}" for k, v in dup["across"].items()),
        "",
    ])


def _pair_note(report: dict[str, Any]) -> str:
    """What a text-pair report measures (nothing for single texts)."""
    if "text_pair" not in report:
        return ""
    first, second = report["text_pair"]
    return (f" Text pairs (`{first}`, `{second}`): token lengths are of the pair's one sequence, duplicates "
            "are of whole pairs.")


def write_report(report: dict[str, Any], lengths: dict[str, np.ndarray], out_dir: Path) -> dict[str, Path]:
    """report.json and lengths.npz (the raw measurements), then the rendered report in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2))
    np.savez_compressed(out_dir / "lengths.npz", **lengths)
    return render(out_dir)


def render(out_dir: Path) -> dict[str, Path]:
    """report.md, token_lengths.png and class_counts.png from report.json + lengths.npz alone (seconds)."""
    report = json.loads((out_dir / "report.json").read_text())
    with np.load(out_dir / "lengths.npz") as saved:
        lengths = {split: saved[split] for split in saved.files}
    figures = {"token_lengths": plot_lengths(lengths, report["max_length"], out_dir / "token_lengths.png"),
               "class_counts": plot_class_counts(report["balancing"], out_dir / "class_counts.png")}
    atomic_write_text(out_dir / "report.md", render_markdown(report, figures))
    return {**figures, "markdown": out_dir / "report.md", "json": out_dir / "report.json"}


def report_dir(cfg: DictConfig) -> Path:
    """<run_dir>/report when run_dir is set, else reports/data/<experiment>."""
    return Path(cfg.run_dir) / "report" if cfg.run_dir else DATA_REPORTS_ROOT / cfg.experiment


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The scalar figures logged to W&B: per-split token percentiles and truncation, padding, cleaning."""
    scalars: dict[str, float] = {}
    for split, stats in report["splits"].items():
        scalars[f"data/{split}/rows"] = stats["rows"]
        scalars[f"data/{split}/changed_by_cleaning"] = stats["changed_by_cleaning"]
        scalars[f"data/{split}/dropped_by_cleaning"] = stats["dropped_by_cleaning"]
        tokens = stats["tokens"]
        scalars.update({f"data/{split}/tokens_{k}": v for k, v in tokens["percentiles"].items()})
        scalars.update({f"data/{split}/truncated_at_{k}": v for k, v in tokens["truncated_share"].items()})
    scalars.update({f"data/padding_{k}": v for k, v in report["padding"].items()})
    return scalars


def log_report(loggers: list[Logger], report: dict[str, Any], files: dict[str, Path]) -> None:
    """Scalars and PNGs to W&B, plus report.md as a W&B file of the run."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_metrics(headline(report))
            for key in ("token_lengths", "class_counts"):
                logger.log_image(key=f"data/{key}", images=[str(files[key])])
            logger.experiment.save(str(files["markdown"]), base_path=str(files["markdown"].parent))


def data_report(cfg: DictConfig, datamodule: TextClassificationDataModule) -> Path:
    """Prepare the run's data module (cleaning, balancing, augmentation), measure it and write the report."""
    out_dir = report_dir(cfg)
    report, lengths = build_report(datamodule)
    report["experiment"] = cfg.experiment
    files = write_report(report, lengths, out_dir)
    if cfg.logger.wandb.enabled:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        loggers = build_loggers(to_object(cfg), out_dir, f"{cfg.experiment}-data-report", resolved)
        with finishing_wandb(loggers):
            log_report(loggers, report, files)
    return files["markdown"]
