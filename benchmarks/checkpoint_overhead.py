"""Wall-time cost of mid-epoch checkpointing on a slice of the offline default (imdb_minilm).

    python -m benchmarks.checkpoint_overhead       # (make checkpoint-overhead) -> reports/checkpoint_overhead/

Runs `python -m src.cli.train` on the same slice with the mid-epoch checkpoint callback on (the shipped
default: every 40 steps or 2 minutes) and off (`callbacks.mid_epoch_checkpoint=null`), interleaved (on/off,
then off/on, ...) so that drift in machine load hits both alike, each run in its own process. Reports the
wall time of every run, the median of each variant and the paired ratios (on / off) with their spread.

The default slice keeps the offline default's ratio of checkpoints to steps: 1,600 train rows = 100 steps of 16,
2 step checkpoints (the full run: 313 steps, 7 of them); validation and test are cut to 200 rows, which both
variants pay alike.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from src.provenance import write_provenance
from src.rundir import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
REPORT_DIR = REPO / "reports" / "checkpoint_overhead"
RESULTS = "checkpoint_overhead.json"
# `on` spells out the shipped cadence (configs/callbacks/default.yaml): an experiment without the callback fails.
VARIANTS = {"on": ["callbacks.mid_epoch_checkpoint.every_n_train_steps=40",
                   "callbacks.mid_epoch_checkpoint.every_minutes=2"],
            "off": ["callbacks.mid_epoch_checkpoint=null"]}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="imdb_minilm")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (interleaved)")
    parser.add_argument("--limit-train", type=int, default=1600)
    parser.add_argument("--limit-eval", type=int, default=200, help="validation and test rows")
    parser.add_argument("--out", type=Path, default=REPORT_DIR)
    return parser.parse_args(argv)


def train_command(args: argparse.Namespace, run_dir: Path, variant: str) -> list[str]:
    return [sys.executable, "-m", "src.cli.train", f"experiment={args.experiment}", "logger=csv",
            "trainer.enable_progress_bar=false", f"data.limit_train={args.limit_train}",
            f"data.limit_val={args.limit_eval}", f"data.limit_test={args.limit_eval}", f"run_dir={run_dir}",
            *VARIANTS[variant]]


def timed_run(args: argparse.Namespace, run_dir: Path, variant: str) -> dict[str, Any]:
    """One training run in its own process: its wall time, and the duration and steps its metrics.json records."""
    started = time.perf_counter()
    subprocess.run(train_command(args, run_dir, variant), cwd=REPO, check=True, capture_output=True)
    wall = time.perf_counter() - started
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"variant": variant, "wall_s": round(wall, 2), "train_s": round(metrics["duration_s"], 2),
            "global_step": metrics["global_step"]}


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every run, the variants' order alternating between repeats."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="ckpt-overhead-") as tmp:
        for repeat in range(args.repeats):
            order = ("on", "off") if repeat % 2 == 0 else ("off", "on")
            for variant in order:
                runs.append({"repeat": repeat, **timed_run(args, Path(tmp) / f"{variant}-{repeat}", variant)})
    return runs


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median wall time per variant, the ratio of medians and the paired on/off ratios."""
    wall = {v: [r["wall_s"] for r in runs if r["variant"] == v] for v in VARIANTS}
    paired = [on / off for on, off in zip(wall["on"], wall["off"], strict=True)]
    return {"median_s": {v: statistics.median(times) for v, times in wall.items()},
            "ratio_of_medians": statistics.median(wall["on"]) / statistics.median(wall["off"]),
            "paired_ratios": paired, "paired_ratio_median": statistics.median(paired)}


def render(report_dir: Path) -> Path:
    """checkpoint_overhead.md from checkpoint_overhead.json (what `make reports` re-renders)."""
    results = json.loads((report_dir / RESULTS).read_text())
    summary, settings = summarize(results["runs"]), results["settings"]
    lines = [
        "# Overhead of mid-epoch checkpointing",
        "",
        f"`{results['command']}` (provenance.json): `{settings['experiment']}` on {settings['limit_train']:,} "
        f"train rows, {settings['limit_eval']} validation and test rows, {settings['repeats']} interleaved "
        "repeats per variant, each run in its own process.",
        "",
        "`on`: the shipped `callbacks.mid_epoch_checkpoint` (a checkpoint every 40 steps or 2 minutes); `off`: "
        "`callbacks.mid_epoch_checkpoint=null`. Wall time: the whole process; in `train()`: from building the "
        "trainer to the end of the test (metrics.json `duration_s`).",
        "",
        "| repeat | variant | wall time (s) | in train() (s) | steps |",
        "|---:|---|---:|---:|---:|",
        *(f"| {r['repeat']} | {r['variant']} | {r['wall_s']:.1f} | {r['train_s']:.1f} | {r['global_step']} |"
          for r in results["runs"]),
        "",
        f"- Median wall time: on {summary['median_s']['on']:.1f} s, off {summary['median_s']['off']:.1f} s; "
        f"ratio of medians (on / off): **{summary['ratio_of_medians']:.3f}**.",
        f"- Paired ratios (on / off, same repeat): median {summary['paired_ratio_median']:.3f}, "
        f"range {min(summary['paired_ratios']):.3f}–{max(summary['paired_ratios']):.3f}.",
        "",
    ]
    path = report_dir / "checkpoint_overhead.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.checkpoint_overhead", *argv])
    runs = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {key: getattr(args, key) for key in ("experiment", "repeats", "limit_train", "limit_eval")}
    atomic_write_text(args.out / RESULTS, json.dumps({"command": command, "settings": settings, "runs": runs},
                                                     indent=2) + "\n")
    write_provenance(args.out, command)
    print(render(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
