"""Training throughput of this template against a plain PyTorch loop and Hugging Face `Trainer`, each at fp32 and
bf16, eager and compiled.

    python -m benchmarks.bench              # (make bench) writes benchmarks/results.md and results.json
    python -m benchmarks.bench --padding    # dynamic padding vs pad-to-max -> benchmarks/padding.md

Every variant trains the same model (MiniLM-L6, real offline weights) on the same tokenized IMDB train rows (this
template's datamodule, the same batches in the same order), with the same batch size, max length, optimizer (AdamW
5e-5, decay 0.01, none on bias/LayerNorm), linear schedule and no gradient clipping. Each variant runs in its own
process (peak RSS is its own); the variants of a round run in a shuffled order and rounds repeat, so slow phases of
a shared machine fall on every variant alike. Ratios are per round against the reference (Hugging Face `Trainer`
at its fastest setting in this run), then the median over rounds.
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
LOOPS = {"template": "this template (TextClassifier + datamodule under Lightning)",
         "plain": "plain PyTorch loop (same model, DataLoader, optimizer)",
         "hf_trainer": "Hugging Face `Trainer` (same model, dataset, collator)"}
SETTINGS = {"fp32": ("fp32", False), "fp32_compiled": ("fp32", True), "bf16": ("bf16", False),
            "bf16_compiled": ("bf16", True)}
PADDINGS = {"pad_to_max": "pad every batch to max_length",
            "dynamic": "dynamic padding (pad to the longest in the batch)",
            "dynamic_grouped": "dynamic padding + length-grouped batches (`data.group_by_length=true`)"}
# Published peak FLOP per cycle per core of each ISA's widest matrix unit (two FMA ports on x86 cores):
# AVX2 fp32 2 x 8 lanes x 2 = 32; AVX-512 fp32 2 x 16 x 2 = 64; AVX512-BF16 (VDPBF16PS) 2 x 32 x 2 = 128;
# AMX bf16 (TMUL) 1024. bf16 on a CPU without bf16 units is emulated, so its peak is the fp32 one.
PEAK_FLOP_PER_CYCLE = {("avx2", "fp32"): 32, ("avx2", "bf16"): 32, ("avx512", "fp32"): 64, ("avx512", "bf16"): 64,
                       ("avx512-bf16", "fp32"): 64, ("avx512-bf16", "bf16"): 128, ("amx", "fp32"): 64,
                       ("amx", "bf16"): 1024, ("baseline", "fp32"): 8, ("baseline", "bf16"): 8}


def variant_name(loop: str, setting: str) -> str:
    return f"{loop}/{setting}"


def compose_cfg(args: argparse.Namespace, max_length: int, group_by_length: bool, samples: int,
                precision: str = "32-true", compiled: bool = False, overrides: tuple[str, ...] = ()) -> Any:
    from src.config import compose

    return compose(["experiment=imdb_minilm", "logger=csv", "scheduler=linear", "model.scheduler.warmup_ratio=0",
                    f"data.limit_train={samples}", "data.limit_val=16", "data.limit_test=16",
                    f"data.max_length={max_length}", f"data.batch_size={args.batch_size}",
                    f"data.group_by_length={str(group_by_length).lower()}", f"trainer.precision={precision}",
                    f"model.compile={str(compiled).lower()}", f"data.cache_dir={REPO / '.cache' / 'datasets'}",
                    "trainer.enable_progress_bar=false", *overrides])


def datamodule_for(cfg: Any) -> Any:
    """The template's data module for `cfg`, set up (its `tokenizer` is the run's one tokenizer)."""
    import lightning as L

    from src.builders import build_datamodule, build_tokenizer

    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg, build_tokenizer(cfg))
    datamodule.setup("fit")
    return datamodule


def run_template(cfg: Any, warmup: int, steps: int) -> tuple[float, float]:
    """Lightning fit of the template's module at the config's precision and compile switch: (seconds from the end
    of warm-up to the last step, seconds of the warm-up steps)."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import CSVLogger

    from src.builders import build_model, build_trainer
    from src.config import to_object

    class Timer(Callback):
        marks: dict[int, float] = {}

        def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
            self.marks[0] = time.perf_counter()

        def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
            self.marks[trainer.global_step] = time.perf_counter()

    datamodule = datamodule_for(cfg)
    module = build_model(cfg, datamodule.tokenizer)
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        # the preset's trainer settings, less anything that would make this loop differ from the others
        trainer = build_trainer(to_object(cfg), Path(tmp), CSVLogger(tmp), [timer], configured=False,
                                accelerator="cpu", devices=1, max_steps=warmup + steps, max_epochs=-1,
                                limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=10,
                                gradient_clip_val=None, accumulate_grad_batches=1)
        trainer.fit(module, datamodule=datamodule)
    return timer.marks[warmup + steps] - timer.marks[warmup], timer.marks[warmup] - timer.marks[0]


def plain_model_and_optimizer(cfg: Any, total_steps: int) -> tuple[Any, Any, Any]:
    import torch

    from src.builders import build_tokenizer
    from src.config import to_object
    from src.modules.model_builder import build_model
    from src.modules.optimizers import build_optimizer

    run = to_object(cfg)
    model = build_model(run.model, list(cfg.data.label_names), build_tokenizer(cfg)).train()
    optimizer = build_optimizer(model, run.model.optimizer)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    return model, optimizer, schedule


def plain_loop(cfg: Any, loader: Any, warmup: int, steps: int | None, bf16: bool = False,
               compiled: bool = False) -> tuple[float, float, float]:
    """A hand-written training loop (autocast for bf16, `Module.compile(dynamic=True)` when compiled); returns
    (seconds for the timed steps, mean padded length, seconds of the warm-up steps). steps=None: warm up, then time
    one pass over `loader`."""
    import torch

    total = warmup + (steps if steps is not None else len(loader))
    model, optimizer, schedule = plain_model_and_optimizer(cfg, total)
    if compiled:
        model.compile(dynamic=True)
    batches = iter(loader)
    widths, begun, started = [], time.perf_counter(), None
    for step in range(total):
        if step == warmup:
            started = time.perf_counter()
            if steps is None:
                batches = iter(loader)
        batch = next(batches)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            widths.append(batch["input_ids"].shape[1])
    return time.perf_counter() - started, sum(widths) / len(widths), started - begun


def run_hf_trainer(cfg: Any, warmup: int, steps: int, bf16: bool, compiled: bool) -> tuple[float, float]:
    """transformers.Trainer with its own speed flags: bf16=True (autocast) and torch_compile=True."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from src.config import to_object
    from src.modules.model_builder import build_model

    datamodule = datamodule_for(cfg)
    run = to_object(cfg)
    model = build_model(run.model, list(cfg.data.label_names), datamodule.tokenizer).train()
    marks: dict[int, float] = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks[0] = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks[state.global_step] = time.perf_counter()

    opt = run.model.optimizer
    with tempfile.TemporaryDirectory() as tmp:
        arguments = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg.data.batch_size, max_steps=warmup + steps,
            learning_rate=opt.lr, weight_decay=opt.weight_decay, adam_beta1=opt.betas[0],
            adam_beta2=opt.betas[1], adam_epsilon=opt.eps, bf16=bf16, torch_compile=compiled,
            optim="adamw_torch_fused" if opt.target_spec().get("fused") else "adamw_torch",  # the same AdamW kernel
            lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=0.0, logging_steps=10,
            save_strategy="no", eval_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
            seed=cfg.seed, disable_tqdm=True)
        trainer = Trainer(model=model, args=arguments, train_dataset=datamodule.splits["train"],
                          data_collator=datamodule.collator, callbacks=[Timer()])
        trainer.train()
    return marks[warmup + steps] - marks[warmup], marks[warmup] - marks[0]


def run_loop(args: argparse.Namespace, loop: str, setting: str) -> dict[str, Any]:
    """One loop at one setting: seconds for the timed steps."""
    dtype, compiled = SETTINGS[setting]
    bf16 = dtype == "bf16"
    cfg = compose_cfg(args, args.max_length, False, (args.warmup + args.steps) * args.batch_size,
                      "bf16-mixed" if bf16 else "32-true", compiled)
    if loop == "template":
        seconds, warmup = run_template(cfg, args.warmup, args.steps)
    elif loop == "plain":
        seconds, _, warmup = plain_loop(cfg, datamodule_for(cfg).train_dataloader(), args.warmup, args.steps, bf16,
                                        compiled)
    else:
        seconds, warmup = run_hf_trainer(cfg, args.warmup, args.steps, bf16, compiled)
    return {"seconds": seconds, "samples": args.steps * args.batch_size, "warmup_s": warmup}


def run_padding(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """The plain fp32 loop over `padding_samples` reviews with one way of batching."""
    from transformers import DataCollatorWithPadding

    cfg = compose_cfg(args, args.padding_length, variant == "dynamic_grouped", args.padding_samples)
    datamodule = datamodule_for(cfg)
    if variant == "pad_to_max":
        datamodule.collator = DataCollatorWithPadding(datamodule.tokenizer, padding="max_length",
                                                      max_length=args.padding_length)
    loader = datamodule.train_dataloader()
    seconds, width, _ = plain_loop(cfg, loader, args.warmup, None)
    return {"seconds": seconds, "samples": len(loader.dataset), "mean_padded_length": width}


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One variant in this process: samples/s and peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    result = run_padding(args, args.child) if args.child in PADDINGS else run_loop(args, *args.child.split("/"))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": args.child, **result, "samples_per_s": result["samples"] / result["seconds"],
            "peak_rss_mb": peak_mb}


def spawn(variant: str, args: argparse.Namespace, round_: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench", "--child", variant, *forwarded(args)]
    print(f"[bench] round {round_}: {variant} ...", flush=True)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"benchmark variant {variant} failed (exit {done.returncode})")
    result = {**json.loads(lines[-1]), "round": round_}
    print(f"[bench] {variant}: {result['samples_per_s']:.2f} samples/s, {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def forwarded(args: argparse.Namespace) -> list[str]:
    keys = ("steps", "warmup", "batch_size", "max_length", "padding_length", "padding_samples", "threads")
    return [item for key in keys for item in (f"--{key.replace('_', '-')}", str(getattr(args, key)))]


def mean_width(args: argparse.Namespace) -> float:
    """Mean padded width of the timed batches (the datamodule's own batches, in their order)."""
    cfg = compose_cfg(args, args.max_length, False, (args.warmup + args.steps) * args.batch_size)
    widths = [batch["input_ids"].shape[1] for batch in datamodule_for(cfg).train_dataloader()]
    timed = widths[args.warmup:args.warmup + args.steps]
    return sum(timed) / len(timed)


def train_flops_per_sample(width: float) -> tuple[float, str]:
    """Training FLOPs per sequence of `width` tokens: 6 x matmul weights x tokens (forward 2, backward 4) plus
    attention's two T x T products, 12 x layers x T^2 x hidden. Returns the number and its arithmetic."""
    from transformers import AutoConfig

    from src.config import compose

    hf = AutoConfig.from_pretrained(compose(["experiment=imdb_minilm"]).model.name_or_path)
    d, ff, layers = hf.hidden_size, hf.intermediate_size, hf.num_hidden_layers
    weights = layers * (4 * d * d + 2 * d * ff) + d * d  # Q, K, V, O and the two FFN matrices per layer; pooler
    flops = 6 * weights * width + 12 * layers * width**2 * d
    arithmetic = (f"6 × {weights / 1e6:.2f} M matmul weights (L={layers}: 4·{d}² + 2·{d}·{ff} per layer, pooler "
                  f"{d}²) × T + 12 × L × T² × {d} (attention), T = {width:.0f} → {flops / 1e9:.2f} GFLOP per review")
    return flops, arithmetic


def peak_flops(threads: int, dtype: str) -> tuple[float, str]:
    """The machine's published peak for `dtype`: cores x clock x FLOP/cycle of its ISA, and its arithmetic."""
    from src.hardware import cpu_ghz, cpu_isa

    isa, ghz = cpu_isa(), cpu_ghz()
    per_cycle = PEAK_FLOP_PER_CYCLE[(isa, dtype)]
    peak = threads * ghz * 1e9 * per_cycle
    return peak, f"{threads} cores × {ghz:.2f} GHz × {per_cycle} FLOP/cycle ({isa}, {dtype}) = {peak / 1e9:.0f} GFLOP/s"


def versions() -> str:
    import platform

    import lightning
    import torch
    import transformers

    return (f"Python {platform.python_version()}, torch {torch.__version__}, lightning {lightning.__version__}, "
            f"transformers {transformers.__version__}")


def machine() -> str:
    from src.hardware import cpu_info, cpu_isa

    info = cpu_info()
    return f"{info['cpu']}, {info['cores']} logical CPUs, ISA {cpu_isa(info)} (bf16 units: {info['bf16']}), no GPU used"


def summarise(results: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, float]]:
    """Per variant: median samples/s over rounds, min and max, median peak RSS."""
    table = {}
    for v in variants:
        rates = [r["samples_per_s"] for r in results if r["variant"] == v]
        rss = [r["peak_rss_mb"] for r in results if r["variant"] == v]
        warmups = [r.get("warmup_s", float("nan")) for r in results if r["variant"] == v]
        table[v] = {"median": statistics.median(rates), "low": min(rates), "high": max(rates),
                    "rss": statistics.median(rss), "warmup": statistics.median(warmups)}
    return table


def ratio_to(results: list[dict[str, Any]], variant: str, reference: str) -> tuple[float, float, float]:
    """Median, min and max over rounds of variant / reference samples/s within the same round."""
    by_round = {(r["round"], r["variant"]): r["samples_per_s"] for r in results}
    rounds = sorted({r["round"] for r in results})
    ratios = [by_round[(k, variant)] / by_round[(k, reference)] for k in rounds]
    return statistics.median(ratios), min(ratios), max(ratios)


def render_loops(args: argparse.Namespace, results: list[dict[str, Any]], width: float, wall: float,
                 load: tuple[float, float]) -> str:
    variants = [variant_name(loop, s) for loop in LOOPS for s in args.settings]
    table = summarise(results, variants)
    best = {loop: max((variant_name(loop, s) for s in args.settings), key=lambda v: table[v]["median"])
            for loop in LOOPS}
    reference = best["hf_trainer"]
    flops, flop_text = train_flops_per_sample(width)
    rows = ["| loop | setting | samples/s median [min–max] | × reference (median [min–max] of per-round ratios) | "
            "MFU | warm-up s (compile included) | peak RSS (MB) |", "|---|---|---:|---:|---:|---:|---:|"]
    for v in variants:
        loop, setting = v.split("/")
        t = table[v]
        ratio = ratio_to(results, v, reference)
        peak, _ = peak_flops(args.threads, SETTINGS[setting][0])
        mark = " **best**" if best[loop] == v else ""
        rows.append(f"| {loop} | {setting}{mark} | {t['median']:.2f} [{t['low']:.2f}–{t['high']:.2f}] | "
                    f"{ratio[0]:.3f} [{ratio[1]:.3f}–{ratio[2]:.3f}] | {t['median'] * flops / peak:.1%} | "
                    f"{t['warmup']:.0f} | {t['rss']:.0f} |")
    headline = ratio_to(results, best["template"], reference)
    plain = ratio_to(results, best["template"], best["plain"])
    peaks = [peak_flops(args.threads, dtype)[1] for dtype in ("fp32", "bf16")]
    subset = args.settings != list(SETTINGS)
    command = "python -m benchmarks.bench " + " ".join(forwarded(args)) + f" --rounds {args.rounds}" + (
        f" --settings {' '.join(args.settings)}" if subset else "")
    only = f" Settings measured: {', '.join(args.settings)} only." if subset else ""
    return "\n".join([
        "# Training throughput benchmark", "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} in {wall / 60:.1f} min with `{command}` "
        "(`make bench`).", "",
        f"- Machine: {machine()}; torch threads: {args.threads}; 1-min load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end.",
        f"- Versions: {versions()}.",
        "- Model: all-MiniLM-L6-v2 (real offline weights); data: real IMDB train reviews tokenized by this "
        f"template's datamodule, batch {args.batch_size}, max length {args.max_length} (mean padded width of the "
        f"timed batches {width:.0f}), {args.steps} timed steps after {args.warmup} warm-up steps (compilation "
        "happens in the warm-up); AdamW lr 5e-5, weight decay 0.01 (not on bias/LayerNorm), linear decay, no "
        "clipping.",
        "- Settings: fp32 = `32-true`; bf16 = autocast to bfloat16 (`trainer.precision=bf16-mixed`, "
        "`torch.autocast` in the plain loop, `TrainingArguments(bf16=True)`); compiled = `torch.compile` "
        "(`model.compile=true` and `Module.compile(dynamic=True)` in the plain loop, "
        "`TrainingArguments(torch_compile=True)`).",
        f"- {args.rounds} rounds; each round runs every variant once, in its own process (peak RSS = its own "
        "`ru_maxrss`, imports included), in a shuffled order. The reference is Hugging Face `Trainer` at its "
        f"fastest setting here (`{reference}`); each ratio is taken within a round, then the median over rounds.{only}",
        "", *rows, "",
        f"**This template at its best (`{best['template']}`) vs Hugging Face `Trainer` at its best (`{reference}`): "
        f"{headline[0]:.3f}× [{headline[1]:.3f}–{headline[2]:.3f}]**; vs the plain loop at its best "
        f"(`{best['plain']}`): {plain[0]:.3f}×.", "",
        "Model FLOP utilisation (MFU) = samples/s × training FLOPs per review / the machine's peak:",
        f"- FLOPs: {flop_text}.",
        f"- Peak: {peaks[0]}; {peaks[1]} (published FLOP/cycle per core of the ISA, `benchmarks/bench.py`).", "",
    ])


def render_padding(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    table = summarise(results, list(PADDINGS))
    rows = ["| batching | samples/s | mean padded length | × pad-to-max | peak RSS (MB) |", "|---|---:|---:|---:|---:|"]
    for v, description in PADDINGS.items():
        width = next(r["mean_padded_length"] for r in results if r["variant"] == v)
        ratio = ratio_to(results, v, "pad_to_max")[0]
        rows.append(f"| {description} | {table[v]['median']:.2f} | {width:.0f} | {ratio:.2f} | {table[v]['rss']:.0f} |")
    command = "python -m benchmarks.bench --padding " + " ".join(forwarded(args)) + f" --rounds {args.rounds}"
    return "\n".join([
        f"# Padding at max length {args.padding_length}", "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} with `{command}` on {machine()}; {versions()}.",
        "", f"Plain fp32 loop, batch {args.batch_size}, one pass over {args.padding_samples} IMDB train reviews after "
        f"{args.warmup} warm-up steps; median of {args.rounds} round(s).", "", *rows, ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--padding", action="store_true", help="compare batchings instead (benchmarks/padding.md)")
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (compilation happens here)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=64, help="max length of the loop comparison")
    parser.add_argument("--padding-length", type=int, default=512, help="max length, padding comparison")
    parser.add_argument("--padding-samples", type=int, default=128, help="reviews in the padding comparison")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every variant, each in a shuffled order")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="settings to time in every loop (fewer: more rounds in the same time)")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results.md (padding.md)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    variants = list(PADDINGS) if args.padding else [variant_name(loop, s) for loop in LOOPS for s in args.settings]
    out = args.out or REPO / "benchmarks" / ("padding.md" if args.padding else "results.md")
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    order = random.Random(0)
    results = []
    for round_ in range(args.rounds):
        results += [spawn(v, args, round_) for v in order.sample(variants, len(variants))]
    load = (load_before, os.getloadavg()[0])
    if args.padding:
        text = render_padding(args, results)
    else:
        text = render_loops(args, results, mean_width(args), time.perf_counter() - started, load)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
