"""Training throughput of this template against a plain PyTorch loop and Hugging Face `Trainer`.

    python -m benchmarks.bench            # (make bench) writes benchmarks/results.md

Every variant trains the same model (MiniLM-L6, real offline weights) on the same tokenized IMDB train
rows (this template's datamodule), with the same batch size, max length, optimizer (AdamW 5e-5, decay
0.01, none on bias/LayerNorm), linear schedule, fp32 and no gradient clipping. Each variant runs in its
own process, so peak RSS is its own; samples/s is measured after warm-up steps.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
LOOPS = ("template", "plain", "hf_trainer")
PADDINGS = ("pad_to_max", "dynamic", "dynamic_grouped")
DESCRIPTIONS = {
    "template": "this template: TextClassifier + datamodule under Lightning",
    "plain": "plain PyTorch loop (same model, DataLoader, optimizer)",
    "hf_trainer": "Hugging Face `Trainer` (same model, dataset, collator)",
    "pad_to_max": "pad every batch to max_length",
    "dynamic": "dynamic padding (pad to the longest in the batch)",
    "dynamic_grouped": "dynamic padding + length-grouped batches (`data.group_by_length=true`)",
}


def compose_cfg(args: argparse.Namespace, max_length: int, group_by_length: bool, samples: int) -> Any:
    from src.config import compose

    return compose(["experiment=imdb_minilm", "logger=csv", "scheduler=linear",
                    "model.scheduler.warmup_ratio=0", f"data.limit_train={samples}", "data.limit_val=16",
                    "data.limit_test=16",
                    f"data.max_length={max_length}", f"data.batch_size={args.batch_size}",
                    f"data.group_by_length={str(group_by_length).lower()}",
                    f"data.cache_dir={REPO / '.cache' / 'datasets'}", "trainer.enable_progress_bar=false"])


def datamodule_for(cfg: Any) -> Any:
    import lightning as L

    from src.datamodules.text_classification import TextClassificationDataModule
    from src.modules.model_builder import load_tokenizer

    L.seed_everything(cfg.seed, verbose=False)
    datamodule = TextClassificationDataModule(cfg.data, load_tokenizer(cfg.model), seed=cfg.seed)
    datamodule.setup("fit")
    return datamodule


def run_template(cfg: Any, warmup: int, steps: int) -> float:
    """Lightning fit of the template's module; timed from the end of warm-up to the last step."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import CSVLogger
    from omegaconf import OmegaConf

    from src.modules.text_classifier import TextClassifier

    class Timer(Callback):
        marks: dict[int, float] = {}

        def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
            self.marks[trainer.global_step] = time.perf_counter()

    datamodule = datamodule_for(cfg)
    module = TextClassifier(OmegaConf.to_container(cfg.model, resolve=True), list(cfg.data.label_names))
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(accelerator="cpu", devices=1, precision="32-true", max_steps=warmup + steps,
                            limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                            logger=CSVLogger(tmp), log_every_n_steps=10, default_root_dir=tmp)
        trainer.fit(module, datamodule=datamodule)
    return timer.marks[warmup + steps] - timer.marks[warmup]


def plain_model_and_optimizer(cfg: Any, total_steps: int) -> tuple[Any, Any, Any]:
    import torch

    from src.config import to_object
    from src.modules.model_builder import build_model, load_tokenizer
    from src.modules.optimizers import build_optimizer

    run = to_object(cfg)
    model = build_model(run.model, list(cfg.data.label_names), load_tokenizer(run.model)).train()
    optimizer = build_optimizer(model, run.model.optimizer)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    return model, optimizer, schedule


def plain_loop(cfg: Any, loader: Any, warmup: int, steps: int | None) -> tuple[float, float]:
    """A hand-written training loop; returns (seconds for the timed steps, mean padded length).

    steps=None: warm up on `warmup` batches, then time one full pass over `loader`."""
    total = warmup + (steps if steps is not None else len(loader))
    model, optimizer, schedule = plain_model_and_optimizer(cfg, total)
    batches = iter(loader)
    widths, started = [], None
    for step in range(total):
        if step == warmup:
            started = time.perf_counter()
            if steps is None:
                batches = iter(loader)
        batch = next(batches)
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            widths.append(batch["input_ids"].shape[1])
    return time.perf_counter() - started, sum(widths) / len(widths)


def run_hf_trainer(cfg: Any, warmup: int, steps: int) -> float:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from src.config import to_object
    from src.modules.model_builder import build_model, load_tokenizer

    datamodule = datamodule_for(cfg)
    run = to_object(cfg)
    tokenizer = load_tokenizer(run.model)
    model = build_model(run.model, list(cfg.data.label_names), tokenizer).train()
    marks: dict[int, float] = {}

    class Timer(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks[state.global_step] = time.perf_counter()

    opt = run.model.optimizer
    with tempfile.TemporaryDirectory() as tmp:
        arguments = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg.data.batch_size, max_steps=warmup + steps,
            learning_rate=opt.lr, weight_decay=opt.weight_decay, adam_beta1=opt.betas[0],
            adam_beta2=opt.betas[1], adam_epsilon=opt.eps, optim="adamw_torch",
            lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=0.0, logging_steps=10,
            save_strategy="no", eval_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
            seed=cfg.seed, disable_tqdm=True)
        trainer = Trainer(model=model, args=arguments, train_dataset=datamodule.splits["train"],
                          data_collator=datamodule.collator, callbacks=[Timer()])
        trainer.train()
    return marks[warmup + steps] - marks[warmup]


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One variant in this process: samples/s, mean padded length and peak RSS."""
    import torch
    from transformers import DataCollatorWithPadding

    torch.set_num_threads(args.threads)
    variant = args.child
    if variant in LOOPS:
        cfg = compose_cfg(args, args.max_length, False, (args.warmup + args.steps) * args.batch_size)
        runner = {"template": run_template, "hf_trainer": run_hf_trainer}.get(variant)
        if runner is None:
            seconds, width = plain_loop(cfg, datamodule_for(cfg).train_dataloader(), args.warmup, args.steps)
        else:
            seconds, width = runner(cfg, args.warmup, args.steps), None
        samples = args.steps * args.batch_size
    else:
        cfg = compose_cfg(args, args.padding_length, variant == "dynamic_grouped", args.padding_samples)
        datamodule = datamodule_for(cfg)
        if variant == "pad_to_max":
            datamodule.collator = DataCollatorWithPadding(datamodule.tokenizer, padding="max_length",
                                                          max_length=args.padding_length)
        loader = datamodule.train_dataloader()
        seconds, width = plain_loop(cfg, loader, args.warmup, None)
        samples = len(loader.dataset)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "seconds": seconds, "samples": samples, "samples_per_s": samples / seconds,
            "mean_padded_length": width, "peak_rss_mb": peak_mb}


def spawn(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench", "--child", variant, *forwarded(args)]
    print(f"[bench] {variant} ...", flush=True)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"benchmark variant {variant} failed (exit {done.returncode})")
    result = json.loads(lines[-1])
    print(f"[bench] {variant}: {result['samples_per_s']:.2f} samples/s, {result['peak_rss_mb']:.0f} MB",
          flush=True)
    return result


def forwarded(args: argparse.Namespace) -> list[str]:
    keys = ("steps", "warmup", "batch_size", "max_length", "padding_length", "padding_samples", "threads")
    return [item for key in keys for item in (f"--{key.replace('_', '-')}", str(getattr(args, key)))]


def token_share_at_max(args: argparse.Namespace) -> float:
    """Share of the timed IMDB rows whose tokenized length reaches max_length (so batches are full width)."""
    cfg = compose_cfg(args, args.max_length, False, (args.warmup + args.steps) * args.batch_size)
    lengths = datamodule_for(cfg).splits["train"].with_format(None)["length"]
    return sum(n >= args.max_length for n in lengths) / len(lengths)


def versions() -> str:
    import lightning
    import torch
    import transformers

    return (f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"lightning {lightning.__version__}, transformers {transformers.__version__}")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, no GPU used"


def best(results: list[dict[str, Any]], variant: str) -> dict[str, Any]:
    """The fastest repeat of a variant (repeats guard against other load on a shared machine)."""
    return max((r for r in results if r["variant"] == variant), key=lambda r: r["samples_per_s"])


def render(args: argparse.Namespace, results: list[dict[str, Any]], full_share: float, wall: float,
           load: tuple[float, float]) -> str:
    loops = {v: best(results, v) for v in LOOPS}
    pads = {v: best(results, v) for v in PADDINGS}
    rows = ["| variant | samples/s | × plain loop | peak RSS (MB) |", "|---|---:|---:|---:|"]
    for v, r in loops.items():
        ratio = r["samples_per_s"] / loops["plain"]["samples_per_s"]
        rows.append(f"| {DESCRIPTIONS[v]} | {r['samples_per_s']:.2f} | {ratio:.3f} | "
                    f"{r['peak_rss_mb']:.0f} |")
    template_vs_hf = loops["template"]["samples_per_s"] / loops["hf_trainer"]["samples_per_s"]
    pad_rows = ["| batching | samples/s | mean padded length | × pad-to-max | peak RSS (MB) |",
                "|---|---:|---:|---:|---:|"]
    for v, r in pads.items():
        ratio = r["samples_per_s"] / pads["pad_to_max"]["samples_per_s"]
        pad_rows.append(f"| {DESCRIPTIONS[v]} | {r['samples_per_s']:.2f} | {r['mean_padded_length']:.0f} | "
                        f"{ratio:.2f} | {r['peak_rss_mb']:.0f} |")
    command = "python -m benchmarks.bench " + " ".join(forwarded(args)) + f" --repeats {args.repeats}"
    return "\n".join([
        "# Training throughput benchmark", "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} in {wall / 60:.1f} min with `{command}` "
        "(`make bench`).", "",
        f"- Machine: {machine()}; torch threads: {args.threads}; 1-min load average {load[0]:.1f} at the "
        f"start, {load[1]:.1f} at the end (other work on a shared machine slows every variant alike only "
        "on average; repeats guard against it).",
        f"- Versions: {versions()}.",
        "- Model: all-MiniLM-L6-v2 (6-layer BERT, 22.7M parameters, real offline weights); data: real IMDB "
        "train reviews tokenized by this template's datamodule; AdamW lr 5e-5, weight decay 0.01 (not on "
        "bias/LayerNorm), linear decay, fp32, no gradient clipping.",
        f"- Best of {args.repeats} repeat(s) per variant; each variant in its own process (peak RSS = its "
        "own `ru_maxrss`, imports included).", "",
        f"## Training loops (batch {args.batch_size}, max length {args.max_length}, "
        f"{args.steps} timed steps after {args.warmup} warm-up steps)", "",
        f"{full_share:.0%} of these reviews reach {args.max_length} tokens, so nearly every batch is "
        f"{args.max_length} wide in all three loops (same data, different loop).", "",
        *rows, "",
        f"Template vs Hugging Face Trainer: **{template_vs_hf:.3f}×**.", "",
        f"## Padding at max length {args.padding_length} (plain loop, batch {args.batch_size}, one pass over "
        f"{args.padding_samples} reviews after {args.warmup} warm-up steps)", "",
        *pad_rows, "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=LOOPS + PADDINGS, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps per loop variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256, help="max length of the loop comparison")
    parser.add_argument("--padding-length", type=int, default=512, help="max length, padding comparison")
    parser.add_argument("--padding-samples", type=int, default=128, help="reviews in the padding comparison")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=2, help="runs per loop variant (best is reported)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.md")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    full_share = token_share_at_max(args)
    results = [spawn(v, args) for _ in range(args.repeats) for v in LOOPS]
    results += [spawn(v, args) for v in PADDINGS]
    load = (load_before, os.getloadavg()[0])
    args.out.write_text(render(args, results, full_share, time.perf_counter() - started, load))
    (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=2))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
