"""The compression report: the fp32 model and each compressed variant compared on the same examples.

The library half of `python -m src.cli.compress_report`.

Per variant: size on disk (MB), non-zero parameters, CPU latency at batch 1 and 32, throughput, speed-up over
fp32 eager and over the fastest non-int8 configuration, validation and test accuracy and macro F1, agreement with
the fp32 predictions (a configuration of the fp32 model slower than fp32 eager is timed but not scored: its
accuracy decides nothing). The fp32 model also runs in bf16 and, compiled by Inductor, in fp32 and bf16 (so an int8
gain is quoted against the best of them), and on ONNX Runtime (rows ort_fp32 and ort_int8: its parity-checked
model.onnx and dynamic int8, as `make export FORMAT=onnx`), timed the same way; the report judges issue 12's
targets and recommends the fastest backend for the machine on the validation split, and reports the test split
once. Latency comes from torch.utils.benchmark `blocked_autorange`, the variants interleaved over `rounds`
rounds (each round times every variant, in a seeded shuffled order), so load from other jobs hits all alike;
reported as median [25th–75th percentile] of the per-round medians, speed-ups as the same of the per-round
ratios. The machine (CPU, AVX2 / AVX-512 / VNNI / AMX, torch, threads, quantized engine) is recorded. The PTQ
int8 variant is created (`make quantize`) when missing. Writes compression.{md,json} and the accuracy-vs-latency
PNG to `out` (default <run_dir>/report); `render(json)` rewrites the Markdown and PNG from the JSON alone. Logs to
W&B when the run had W&B on.
"""

import copy
import functools
import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from src import rundir  # noqa: E402
from src.builders import build_datamodule  # noqa: E402
from src.compression.inductor_int8 import InductorClassifier, calibrated_int8, validation_batches  # noqa: E402
from src.compression.measure import (  # noqa: E402
    Rounds,
    forward_times_ms,
    interleaved_times_ms,
    latency_stats,
    machine_info,
    nonzero_parameters,
    predict,
    prediction_scores,
    random_inputs,
    size_on_disk_mb,
    speedup_stats,
)
from src.compression.onnx_export import INT8_FILE, ONNX_FILE, REPORT_FILE, OnnxClassifier, write_onnx  # noqa: E402
from src.compression.variants import load_variant, quantize_checkpoint  # noqa: E402
from src.errors import ConfigError  # noqa: E402
from src.loggers import resolve_wandb_mode  # noqa: E402
from src.modules.finetuning import merged  # noqa: E402
from src.reporting.int8_targets import SAME_MODEL, best_float, targets_markdown  # noqa: E402
from src.run import Run  # noqa: E402

log = logging.getLogger(__name__)
VARIANTS = ("pruned", "heads", "ptq_int8", "qat_int8", "distilled")
BATCH_SIZES = (1, 32)
FIGURE = "compression_accuracy_vs_latency.png"


def collect_variants(run: Run, given: dict[str, str]) -> dict[str, Path]:
    """fp32 (the run's checkpoint) first, then every variant given on the command line; PTQ int8 and the ONNX
    Runtime fp32 / int8 models of the fp32 checkpoint made when missing."""
    variants = {"fp32": run.checkpoint, **{name: Path(given[name]) for name in VARIANTS if name in given}}
    compression = run.run_dir / "compression"
    if "ptq_int8" not in variants:
        default = compression / "ptq_int8.safetensors"
        variants["ptq_int8"] = default if default.is_file() else quantize_checkpoint(run.checkpoint, default)
    onnx_dir = compression / "onnx"
    if not (onnx_dir / REPORT_FILE).is_file():  # written last: its absence means a missing or incomplete export
        onnx_dir.mkdir(parents=True, exist_ok=True)
        write_onnx(merged(run.load_classifier().model), run.tokenizer, onnx_dir)
    variants.update({"ort_fp32": onnx_dir / ONNX_FILE, "ort_int8": onnx_dir / INT8_FILE})
    for name, path in variants.items():
        if not path.is_file():
            raise ConfigError(f"{name}={path} does not exist.")
    return variants


def time_variants(models: dict[str, nn.Module], settings: dict[str, Any]) -> dict[str, dict[str, Rounds]]:
    """Raw per-round forward timings (ms) of every model, keyed by batch size, on the same random inputs."""
    vocab = next(iter(models.values())).config.vocab_size
    inputs = {str(size): random_inputs(size, settings["seq_len"], vocab) for size in BATCH_SIZES}
    time_fn = functools.partial(forward_times_ms, threads=settings["threads"], min_run_time=settings["min_run_time"])
    log.info("Timing %d variants interleaved over %d rounds", len(models), settings["rounds"])
    return interleaved_times_ms(models, inputs, settings["rounds"], time_fn)


def float_variants(fp32: nn.Module, compiled: bool) -> dict[str, tuple[str, nn.Module]]:
    """The fp32 model's other non-int8 configurations, so an int8 gain is quoted against the best of them: bf16
    weights and activations, and (`compiled`) torch.compile (Inductor, dynamic shapes) of fp32 and bf16."""
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16).eval()
    built = {"bf16": ("fp32 weights cast to bfloat16", bf16)}
    if compiled:
        built |= {"fp32_compiled": ("torch.compile of fp32 (Inductor, dynamic shapes)",
                                    torch.compile(copy.deepcopy(fp32).eval(), dynamic=True)),
                  "bf16_compiled": ("torch.compile of the bf16 model (Inductor, dynamic shapes)",
                                    torch.compile(copy.deepcopy(bf16), dynamic=True))}
    return built


def inductor_variants(fp32: nn.Module, calibration: list[dict[str, torch.Tensor]],
                      seq_len: int) -> dict[str, tuple[str, nn.Module]]:
    """Static int8 of the fp32 model compiled by Inductor, plain and with bf16 float ops: (description, model)."""
    log.info("Calibrating static int8 on %d validation batches", len(calibration))
    quantized = calibrated_int8(fp32, calibration, seq_len)
    pad_id = fp32.config.pad_token_id or 0
    examples = sum(len(batch["input_ids"]) for batch in calibration)
    source = f"PT2E static int8 of fp32, calibrated on {examples} validation examples"
    return {"inductor_int8": (source, InductorClassifier(copy.deepcopy(quantized), seq_len, pad_id)),
            "inductor_int8_bf16": (f"{source}, float ops in bf16",
                                   InductorClassifier(quantized, seq_len, pad_id, bf16=True))}


def measure_variants(variants: dict[str, Path], loaders: dict[str, Any], settings: dict[str, Any],
                     built: dict[str, tuple[str, nn.Module]] | None = None,
                     ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Rounds]]]:
    """One row per variant file and per `built` (description, model): the raw timings of every variant first, then
    validation scores (`val_`, what targets are judged on) and test scores, agreement against the first (fp32), for
    every row but the unscored ones (`unscored`)."""
    models = {name: (str(path), OnnxClassifier(path, settings["threads"]) if path.suffix == ".onnx"
                     else load_variant(path).model) for name, path in variants.items()} | (built or {})
    times = time_variants({name: model for name, (_, model) in models.items()}, settings)
    skipped = [] if settings["score_slower"] else unscored(times)
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] = {}
    for name, (source, model) in models.items():
        row = {"variant": name, "path": source, "size_mb": size_on_disk_mb(model),
               "nonzero_params": nonzero_parameters(model)}
        log.info("%s %s (%s)", "Not scoring" if name in skipped else "Predicting with", name, source)
        for split, prefix in () if name in skipped else (("validation", "val_"), ("test", "")):
            preds, labels = predict(model, loaders[split])
            reference.setdefault(split, preds)
            row |= prediction_scores(preds, labels, reference[split], prefix)
        rows.append(row)
    return rows, times


def unscored(times: dict[str, dict[str, Rounds]]) -> list[str]:
    """The fp32 model's other configurations slower than fp32 eager at batch 32 (median per-round ratio below 1):
    neither int8's reference nor a recommendation can be one, so their accuracy decides nothing, and scoring them
    costs most where they are slowest (the bf16 rows on a CPU without bf16 units, where bf16 is emulated)."""
    return [name for name in SAME_MODEL if name in times
            and speedup_stats(times["fp32"]["32"], times[name]["32"])["median"] < 1]


def summarize(rows: list[dict[str, Any]], times: dict[str, dict[str, Rounds]]) -> list[dict[str, Any]]:
    """Add the derived columns: latency quartiles and speed-ups per batch size (over fp32 eager, and at batch 32
    over the fastest non-int8 configuration of the fp32 model), size and accuracy vs fp32."""
    base = rows[0]
    for row in rows:
        for size, rounds in times[row["variant"]].items():
            row.update({f"b{size}_{k}": v for k, v in latency_stats(rounds, int(size)).items()})
            reference = times[base["variant"]][size]
            row.update({f"speedup_b{size}_{k}": v for k, v in speedup_stats(reference, rounds).items()})
        row["size_ratio"] = base["size_mb"] / row["size_mb"]
        if "accuracy" in row:
            row["acc_drop_pts"] = 100 * (base["accuracy"] - row["accuracy"])
        if "val_accuracy" in row:
            row["val_acc_drop_pts"] = 100 * (base["val_accuracy"] - row["val_accuracy"])
    fastest = best_float(rows)
    for row in rows:
        speedup = speedup_stats(times[fastest["variant"]]["32"], times[row["variant"]]["32"])
        row.update({f"speedup_best_float_b32_{k}": v for k, v in speedup.items()})
    return rows


def _spread(row: dict[str, Any], prefix: str, suffix: str, digits: int) -> str:
    """`median [p25–p75]` of one measured quantity."""
    median, p25, p75 = (row[f"{prefix}_{q}{suffix}"] for q in ("median", "p25", "p75"))
    return f"{median:.{digits}f} [{p25:.{digits}f}–{p75:.{digits}f}]"


def machine_line(machine: dict[str, Any]) -> str:
    """The machine the latencies were measured on, as one Markdown line."""
    isa = ", ".join(f"{label} {'yes' if machine[key] else 'no'}"
                    for key, label in (("avx2", "AVX2"), ("avx512", "AVX-512"), ("vnni", "VNNI"), ("amx", "AMX")))
    return (f"Machine: {machine['cpu']} ({isa}); torch {machine['torch']} ({machine['torch_cpu_capability']} "
            f"kernels), threads: {machine['threads']}, quantized engine {machine['quantized_engine']}.\n\n")


def markdown_table(report: dict[str, Any]) -> str:
    """The report as a machine line, a Markdown table and a settings line."""
    settings = report["settings"]
    fastest = best_float(report["rows"])["variant"]
    head = ("| variant | size MB | × smaller | non-zero params | b1 median [IQR] ms | b32 median [IQR] ms "
            f"| × faster b32 median [IQR] | × {fastest} b32 | b32 samples/s | val accuracy | val agreement "
            "| accuracy | Δ acc (pts) | macro F1 | agreement |\n" + "|---" * 15 + "|\n")
    body = "".join(
        f"| {r['variant']} | {r['size_mb']:.1f} | {r['size_ratio']:.2f} | {r['nonzero_params'] / 1e6:.2f}M "
        f"| {_spread(r, 'b1', '_ms', 1)} | {_spread(r, 'b32', '_ms', 0)} | {_spread(r, 'speedup_b32', '', 2)} "
        f"| {r['speedup_best_float_b32_median']:.2f} | {r['b32_samples_per_s']:.1f} | {_percent(r, 'val_accuracy', 2)} "
        f"| {_percent(r, 'val_agreement', 1)} | {_percent(r, 'accuracy', 2)} "
        f"| {'–' if r.get('acc_drop_pts') is None else format(r['acc_drop_pts'], '+.2f')} "
        f"| {_percent(r, 'f1_macro', 2)} | {_percent(r, 'agreement', 1, '%')} |\n"
        for r in report["rows"])
    note = (f"\n{report['examples']} stratified test examples; latency on random full-length inputs "
            f"(seq {settings['seq_len']}), torch threads: {settings['threads']}; timed with torch.utils.benchmark "
            f"blocked_autorange (min_run_time {settings['min_run_time']} s), the variants interleaved over "
            f"{settings['rounds']} rounds: median [25th–75th percentile] of the per-round medians; samples/s at "
            "the median. × faster = fp32 time / variant time in the same round, median [IQR] over rounds; "
            f"× {fastest} = the same against the fastest non-int8 configuration of the fp32 model (what int8 "
            "itself buys). Validation columns: what the targets and the recommendation are judged on; test "
            "columns (accuracy to agreement) are reported once. Δ acc = fp32 accuracy − variant accuracy.")
    if report["rows"][0].get("val_accuracy") is None:
        note += " This report predates validation scoring: its targets are judged on the test examples."
    if settings.get("shuffled"):
        note += " The order of the variants is shuffled in every round (seeded)."
    if skipped := [r["variant"] for r in report["rows"] if "accuracy" not in r]:
        note += (f" Not scored: {', '.join(skipped)}, the fp32 model in a configuration slower than fp32 eager at "
                 "batch 32, so neither int8's reference nor a recommendation: their accuracy decides nothing here "
                 "(`score_slower=true` scores them).")
    if settings.get("inductor"):
        note += (f" inductor_int8: static int8 (PT2E, X86InductorQuantizer), activation ranges calibrated on "
                 f"{settings['calibration_batches']} validation batches, compiled by Inductor, inputs right-padded "
                 "to the graph's length; inductor_int8_bf16: the same graph with its float ops in bfloat16.")
    return machine_line(report["machine"]) + head + body + note + "\n"


def _percent(row: dict[str, Any], key: str, digits: int, unit: str = "") -> str:
    """A share as a percentage, or – for a row not scored or a report written before it was measured."""
    return "–" if row.get(key) is None else f"{100 * row[key]:.{digits}f}{unit}"


def plot(rows: list[dict[str, Any]], out: Path) -> Path:
    """Accuracy against batch-32 median latency, one labelled point per variant with its IQR as error bar."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for row in (r for r in rows if "accuracy" in r):
        x, y = row["b32_median_ms"], 100 * row["accuracy"]
        ax.errorbar(x, y, xerr=[[x - row["b32_p25_ms"]], [row["b32_p75_ms"] - x]], fmt="o", capsize=3)
        ax.annotate(row["variant"], (x, y), textcoords="offset points", xytext=(4, 4))
    ax.set(xlabel="CPU latency, batch 32, median [IQR] of rounds (ms)", ylabel="test accuracy (%)",
           title="Accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def render(json_path: Path) -> tuple[Path, Path]:
    """(Re)write compression.md and the plot next to `json_path` from the JSON alone (no models needed)."""
    report = json.loads(Path(json_path).read_text())
    rows = summarize(report["rows"], report["times_ms"])
    markdown = Path(json_path).with_name("compression.md")
    full = {**report, "rows": rows}
    rundir.atomic_write_text(markdown, markdown_table(full) + targets_markdown(full))
    return markdown, plot(rows, Path(json_path).with_name(FIGURE))


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
        table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])
        run.log({"compression/table": table,
                 "compression/accuracy_vs_latency": wandb.Image(str(figure))})
        run.finish()
    except Exception as err:  # noqa: BLE001 - logging never fails the report
        log.warning("W&B logging of the compression report failed: %s", err)


def compression_report(ckpt: Path, given: dict[str, str], settings: dict[str, Any], out: Path | None = None) -> Path:
    """Measure every variant, write the JSON (with raw timings), Markdown and plot to `out`; returns the Markdown."""
    run = Run.open(ckpt, [f"data.limit_test={settings['limit_test']}"])
    torch.set_num_threads(settings["threads"])
    cfg = run.cfg
    variants = collect_variants(run, given)
    datamodule = build_datamodule(run.cfg, run.tokenizer)
    datamodule.setup()
    fp32 = merged(run.load_classifier().model)
    built = float_variants(fp32, settings["compiled"])
    if settings["inductor"]:
        calibration = validation_batches(datamodule, settings["calibration_batches"])
        built |= inductor_variants(fp32, calibration, max(cfg.data.max_length, settings["seq_len"]))
    loaders = {"validation": datamodule.val_dataloader(), "test": datamodule.test_dataloader()}
    rows, times = measure_variants(variants, loaders, settings, built)
    report_dir = out or run.run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    parity = json.loads((variants["ort_fp32"].parent / REPORT_FILE).read_text())["fp32"]
    report = {"settings": {**settings, "shuffled": True}, "examples": len(datamodule.splits["test"]),
              "validation_examples": len(datamodule.splits["validation"]), "machine": machine_info(),
              "rows": summarize(rows, times), "times_ms": times, "onnx_parity": parity}
    rundir.atomic_write_text(report_dir / "compression.json", json.dumps(report, indent=2))
    markdown, figure = render(report_dir / "compression.json")
    log_to_wandb(cfg, rows, figure, report_dir)
    return markdown
