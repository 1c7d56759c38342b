"""AdamW's kernel: the optimizer step, and fp32 training in this template and in Hugging Face `Trainer`, with the
for-loop and the fused implementation.

    python -m benchmarks.adamw_kernel        # writes benchmarks/adamw_kernel.md

Why: `Trainer` defaults to the fused AdamW kernel (torch >= 2.8) and this template's optimizer presets did not, and
at a small batch the step over MiniLM-L6's 22.7M parameters is a large share of the time. (a) `optimizer.step()`
alone with the for-loop, foreach and fused kernels (torch.utils.benchmark `blocked_autorange`, the kernels
interleaved over rounds); (b) fp32 eager training, the template and `Trainer` with each kernel, in one process, the
four variants in a shuffled order per round; ratios are per round against `Trainer` with its default (fused)
kernel, then the median and range over rounds.
"""

import argparse
import random
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils import benchmark

from benchmarks.bench import REPO, compose_cfg, machine, run_hf_trainer, run_template, versions

KERNELS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
REFERENCE = "Trainer, fused"


def step_times_ms(rounds: int, threads: int) -> dict[str, list[float]]:
    """Median ms of one AdamW step over MiniLM-L6's parameters (random gradients), per kernel and round."""
    from transformers import AutoModelForSequenceClassification

    from src.config import compose

    model = AutoModelForSequenceClassification.from_pretrained(compose(["experiment=imdb_minilm"]).model.name_or_path)
    params = list(model.parameters())
    for param in params:
        param.grad = torch.randn_like(param) * 1e-3
    optimizers = {name: torch.optim.AdamW(params, lr=1e-5, **kwargs) for name, kwargs in KERNELS.items()}
    times: dict[str, list[float]] = {name: [] for name in KERNELS}
    for _ in range(rounds):
        for name, optimizer in optimizers.items():
            timer = benchmark.Timer("optimizer.step()", globals={"optimizer": optimizer}, num_threads=threads)
            times[name].append(1000 * timer.blocked_autorange(min_run_time=2).median)
    return times


def training_rates(args: argparse.Namespace) -> dict[str, list[float]]:
    """Samples/s of fp32 eager training per variant (loop x kernel) and round, the variants shuffled per round."""
    variants = {f"{loop}, {'fused' if fused else 'for-loop'}": (loop, fused)
                for loop in ("template", "Trainer") for fused in (False, True)}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    order = random.Random(0)
    for _ in range(args.rounds):
        for name in order.sample(list(variants), len(variants)):
            loop, fused = variants[name]
            cfg = compose_cfg(args, args.max_length, False, 50 * args.batch_size,
                              overrides=(f"model.optimizer.fused={str(fused).lower()}",))
            seconds = (run_template(cfg, args.warmup, args.steps) if loop == "template"
                       else run_hf_trainer(cfg, args.warmup, args.steps, bf16=False, compiled=False))[0]
            rates[name].append(args.steps * args.batch_size / seconds)
    return rates


def spread(values: list[float], digits: int) -> str:
    """`median [min–max]`."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def render(args: argparse.Namespace, steps: dict[str, list[float]], rates: dict[str, list[float]]) -> str:
    """The two tables with the command, date, machine and versions."""
    command = " ".join(["python -m benchmarks.adamw_kernel", *sys.argv[1:]])
    lines = [f"# AdamW kernels on {machine()}", "",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} with `{command}`; {versions()}; "
             f"{args.threads} threads, {args.rounds} rounds.", "",
             "## One optimizer step (MiniLM-L6, 22.7M parameters)", "",
             "| kernel | ms per step, median [min–max] of rounds | × faster than for-loop (per round, median) |",
             "|---|---:|---:|"]
    lines += [f"| {name} | {spread(times, 1)} | "
              f"{statistics.median(a / b for a, b in zip(steps['for-loop'], times, strict=True)):.2f} |"
              for name, times in steps.items()]
    lines += ["", f"## fp32 eager training, batch {args.batch_size} x {args.max_length} tokens, {args.steps} timed "
              f"steps after {args.warmup}", "",
              f"| variant | samples/s, median [min–max] | × {REFERENCE} (per round) |", "|---|---:|---:|"]
    lines += [f"| {name} | {spread(rate, 2)} | "
              f"{spread([a / b for a, b in zip(rate, rates[REFERENCE], strict=True)], 3)} |"
              for name, rate in rates.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="timed training steps per variant and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "adamw_kernel.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = render(args, step_times_ms(args.rounds, args.threads), training_rates(args))
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
