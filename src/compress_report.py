"""Compression report: the fp32 model and each compressed variant on the same test examples.

    python -m src.compress_report ckpt=runs/imdb_minilm/<run>/checkpoints/last.ckpt \\
        [pruned=<ckpt>] [heads=<ckpt>] [qat_int8=<pt>] [distilled=<ckpt>] [ptq_int8=<pt>] \\
        [limit_test=2000] [repeats=10] [seq_len=256] [threads=<n>]

Per variant: size on disk (MB), non-zero parameters, CPU latency p50/p95 at batch 1 and 32, throughput,
test accuracy and macro F1, agreement with the fp32 predictions. The PTQ int8 variant is created
(`make quantize`) when missing. Writes <run_dir>/report/compression.{md,json,png}; logs to W&B when
the run had W&B on.
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from src.cli import entry_point
from src.compression.export import load_variant  # noqa: E402
from src.compression.measure import (  # noqa: E402
    latency_ms,
    nonzero_parameters,
    predict,
    prediction_scores,
    size_on_disk_mb,
)
from src.datamodules.text_classification import TextClassificationDataModule  # noqa: E402
from src.errors import ConfigError, LabError  # noqa: E402
from src.eval import run_config_for  # noqa: E402
from src.loggers import resolve_wandb_mode  # noqa: E402
from src.modules.model_builder import load_tokenizer  # noqa: E402
from src.quantize import quantize_checkpoint  # noqa: E402

log = logging.getLogger("src.compress_report")
VARIANTS = ("pruned", "heads", "ptq_int8", "qat_int8", "distilled")
SETTINGS = {"limit_test": 2000, "repeats": 10, "seq_len": 256, "threads": 0}


def collect_variants(ckpt: Path, given: dict[str, str]) -> dict[str, Path]:
    """fp32 first, then every variant given on the command line; PTQ int8 made when missing."""
    variants = {"fp32": ckpt, **{name: Path(given[name]) for name in VARIANTS if name in given}}
    if "ptq_int8" not in variants:
        default = ckpt.resolve().parent.parent / "compression" / "ptq_int8.pt"
        variants["ptq_int8"] = default if default.is_file() else quantize_checkpoint(ckpt, default)
    for name, path in variants.items():
        if not path.is_file():
            raise ConfigError(f"{name}={path} does not exist.")
    return variants


def measure_variants(variants: dict[str, Path], loader: Any,
                     settings: dict[str, int]) -> list[dict[str, Any]]:
    """One row of measurements per variant; agreement is against the first (fp32) variant."""
    rows: list[dict[str, Any]] = []
    reference = None
    for name, path in variants.items():
        log.info("Measuring %s (%s)", name, path)
        model = load_variant(path).model
        preds, labels = predict(model, loader)
        reference = preds if reference is None else reference
        row = {"variant": name, "path": str(path), "size_mb": size_on_disk_mb(model),
               "nonzero_params": nonzero_parameters(model), **prediction_scores(preds, labels, reference)}
        vocab = model.config.vocab_size
        for batch_size, repeats in ((1, 3 * settings["repeats"]), (32, settings["repeats"])):
            timing = latency_ms(model, batch_size, settings["seq_len"], vocab, repeats)
            row.update({f"b{batch_size}_{key}": value for key, value in timing.items()})
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["speedup_b32"] = base["b32_p50_ms"] / row["b32_p50_ms"]
        row["size_ratio"] = base["size_mb"] / row["size_mb"]
        row["acc_drop_pts"] = 100 * (base["accuracy"] - row["accuracy"])
    return rows


def markdown_table(rows: list[dict[str, Any]], settings: dict[str, int], examples: int) -> str:
    """The report as a Markdown table."""
    head = ("| variant | size MB | × smaller | non-zero params | b1 p50 / p95 ms | b32 p50 / p95 ms "
            "| × faster b32 | b32 samples/s | accuracy | Δ acc (pts) | macro F1 | agreement |\n"
            + "|---" * 12 + "|\n")
    body = "".join(
        f"| {r['variant']} | {r['size_mb']:.1f} | {r['size_ratio']:.2f} | {r['nonzero_params'] / 1e6:.2f}M "
        f"| {r['b1_p50_ms']:.1f} / {r['b1_p95_ms']:.1f} | {r['b32_p50_ms']:.0f} / {r['b32_p95_ms']:.0f} "
        f"| {r['speedup_b32']:.2f} | {r['b32_throughput']:.1f} | {100 * r['accuracy']:.2f} "
        f"| {r['acc_drop_pts']:+.2f} | {100 * r['f1_macro']:.2f} | {100 * r['agreement']:.1f}% |\n"
        for r in rows)
    note = (f"\n{examples} stratified test examples; latency on random full-length inputs "
            f"(seq {settings['seq_len']}), {torch.get_num_threads()} CPU threads, "
            f"{settings['repeats']} timed batches of 32 "
            f"({3 * settings['repeats']} of 1). Δ acc = fp32 accuracy − variant accuracy.\n")
    return head + body + note


def plot(rows: list[dict[str, Any]], out: Path) -> Path:
    """Accuracy against batch-32 latency, one labelled point per variant."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for row in rows:
        ax.scatter(row["b32_p50_ms"], 100 * row["accuracy"])
        ax.annotate(row["variant"], (row["b32_p50_ms"], 100 * row["accuracy"]), textcoords="offset points",
                    xytext=(4, 4))
    ax.set(xlabel="CPU latency, batch 32, p50 (ms)", ylabel="test accuracy (%)", title="Accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def log_to_wandb(cfg: Any, rows: list[dict[str, Any]], figure: Path, report_dir: Path) -> None:
    """The table and the plot as a W&B run of job type `compress-report` (offline without a key)."""
    if not cfg.logger.wandb.enabled:
        return
    try:
        import wandb

        mode, _ = resolve_wandb_mode(cfg.logger.wandb.mode)
        run = wandb.init(project=cfg.logger.wandb.project, entity=cfg.logger.wandb.entity,
                         group=cfg.logger.wandb.group, job_type="compress-report", dir=str(report_dir),
                         mode=mode, name=f"{cfg.experiment}-compression")
        columns = list(rows[0])
        table = wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])
        run.log({"compression/table": table,
                 "compression/accuracy_vs_latency": wandb.Image(str(figure))})
        run.finish()
    except Exception as err:  # noqa: BLE001 - logging never fails the report
        log.warning("W&B logging of the compression report failed: %s", err)


def compression_report(ckpt: Path, given: dict[str, str], settings: dict[str, int]) -> Path:
    """Measure every variant, write the Markdown, JSON and plot; returns the Markdown path."""
    if not ckpt.is_file():
        raise ConfigError(f"Checkpoint not found: {ckpt}. "
                          "Pass CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt.")
    if settings["threads"] > 0:
        torch.set_num_threads(settings["threads"])
    cfg = run_config_for(ckpt, [f"data.limit_test={settings['limit_test']}"])
    variants = collect_variants(ckpt, given)
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("test")
    rows = measure_variants(variants, datamodule.test_dataloader(), settings)
    report_dir = ckpt.resolve().parent.parent / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "compression.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=2))
    markdown = report_dir / "compression.md"
    markdown.write_text(markdown_table(rows, settings, len(datamodule.splits["test"])))
    figure = plot(rows, report_dir / "compression_accuracy_vs_latency.png")
    log_to_wandb(cfg, rows, figure, report_dir)
    return markdown


@entry_point(log, user_errors=(LabError, ValueError))
def main(argv: list[str]) -> int:
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = set(args) - {"ckpt", *VARIANTS, *SETTINGS}
    if unknown or "ckpt" not in args:
        extra = f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""
        raise ConfigError(f"Usage: python -m src.compress_report ckpt=<.ckpt> [{'|'.join(VARIANTS)}=<p>] "
                          f"[{'|'.join(SETTINGS)}=<int>]{extra}.")
    settings = {k: int(args.get(k, v)) for k, v in SETTINGS.items()}
    markdown = compression_report(Path(args["ckpt"]), args, settings)
    print(markdown.read_text())
    print(f"Report: {markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
