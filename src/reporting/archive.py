"""Committed reports under reports/: a design's raw per-run files copied into reports/<design>/ and rendered
there; any report (design, compression, data, checkpoint overhead) re-rendered from its raw files or
rerun from its provenance.

A design's report directory holds everything its tables and plots are computed from (design.yaml, provenance.json,
and per run config.yaml, metrics.json, predictions and the training curve), so `make reports` re-renders
it in seconds on a fresh clone, and `make reports RERUN=1` reruns the command in its provenance.json.
"""

import json
import logging
import pkgutil
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from src.config import REPO_ROOT
from src.errors import ConfigError
from src.provenance import DIFF_FILE, write_provenance
from src.reporting.design_log import log_publication
from src.reporting.plan import PLAN_FILE
from src.reporting.summary import write_report

log = logging.getLogger(__name__)
REPORTS_ROOT = Path("reports")
# Reports recorded before entry points moved to src/cli/ name the old module in their provenance command.
MOVED_ENTRY_POINTS = {"-m src.design ": "-m src.cli.design "}
# A make command-line variable of a rerun: its value reaches recipe shell lines, so no shell or make syntax.
SAFE_MAKE_VARIABLE = re.compile(r"[A-Z_]+=[\w./:,+= -]*")
RAW_FILES = ("config.yaml", "metrics.json", "predictions_validation.csv", "predictions_test.csv",
             "csv/metrics.csv")


def record_provenance(results_dir: Path, argv: list[str]) -> Path:
    """results/<design>/provenance.json: how to rerun it, with the code version, packages and machine."""
    return write_provenance(results_dir, shlex.join([".venv/bin/python", "-m", "src.cli.design", *argv]))


def publish(results_dir: Path, report_dir: Path) -> dict[str, Path]:
    """Log the report being replaced as an earlier iteration, replace report_dir's raw files with results_dir's
    (no checkpoints; the diff of a dirty tree beside its provenance), then render the report there."""
    record = yaml.safe_load((results_dir / "design.yaml").read_text())
    log_publication(report_dir, record)
    shutil.rmtree(report_dir / "runs", ignore_errors=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    for name in (DIFF_FILE, PLAN_FILE):
        (report_dir / name).unlink(missing_ok=True)
    for name in ("design.yaml", "provenance.json", PLAN_FILE, "trials.csv", DIFF_FILE):
        if name in ("design.yaml", "provenance.json") or (results_dir / name).is_file():  # plan; TPE; dirty tree
            shutil.copy2(results_dir / name, report_dir / name)
    for finished in sorted(results_dir.glob("runs/*/seed*/metrics.json")):
        run = finished.parent
        if run.parent.name not in record["arms"]:
            continue  # an arm an earlier iteration had: not part of this report
        for name in RAW_FILES:
            if (run / name).is_file():
                target = report_dir / run.relative_to(results_dir) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, target)
    return write_report(report_dir)


def report_dirs(root: Path = REPORTS_ROOT) -> list[Path]:
    """Every folder under `root` that holds a renderable report."""
    markers = ("design.yaml", "compression.json", "report.json", "checkpoint_overhead.json")
    return sorted({p.parent for marker in markers for p in root.rglob(marker)})


def render(report_dir: Path) -> None:
    """Re-write the tables and plots of one report from its raw files."""
    if (report_dir / "design.yaml").is_file():
        write_report(report_dir)
    elif (report_dir / "compression.json").is_file():
        from src.reporting.compression_report import render as render_compression

        render_compression(report_dir / "compression.json")
    elif (report_dir / "checkpoint_overhead.json").is_file():
        from benchmarks.checkpoint_overhead import render as render_overhead

        render_overhead(report_dir)
    else:
        from src.reporting.data_profile import render as render_data

        render_data(report_dir)


def rerun(report_dir: Path) -> None:
    """Run the command recorded in provenance.json (from the repository root), as an argument list, no shell."""
    path = report_dir / "provenance.json"
    args = rerun_arguments(json.loads(path.read_text())["command"], path)
    log.info("Rerunning %s: %s", report_dir, shlex.join(args))
    subprocess.run(args, check=True, cwd=REPO_ROOT)


def rerun_arguments(command: str, source: Path) -> list[str]:
    """The recorded `command` as an argument list when it runs one of this project's own entry points:
    `make <target> [VAR=value ...]` or `<python> -m src.cli.<name> | benchmarks.<name> [args]` (run with this
    interpreter); a ConfigError for anything else, so a forked repository's reports cannot run arbitrary code."""
    for old, new in MOVED_ENTRY_POINTS.items():
        command = command.replace(old, new)
    refused = ConfigError(f"{source}: refusing to rerun `{command}`: only `make <target> [VAR=value]` and "
                          "`python -m src.cli.<name> ...` (or benchmarks.<name>) of this repository are rerun.")
    try:
        args = shlex.split(command)
    except ValueError:
        raise refused from None
    if args[:1] == ["make"] and args[1:2] and args[1] in make_targets() and all(map(SAFE_MAKE_VARIABLE.fullmatch,
                                                                                    args[2:])):
        return args
    if len(args) >= 3 and Path(args[0]).name.startswith("python") and args[1] == "-m" and args[2] in entry_points():
        return [sys.executable, *args[1:]]
    raise refused


def make_targets() -> set[str]:
    """The documented targets of the repository's Makefile (the ones `make help` lists)."""
    return set(re.findall(r"^([a-zA-Z_-]+):.*?## ", (REPO_ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def entry_points() -> set[str]:
    """`src.cli.<name>` and `benchmarks.<name>`: the modules a recorded python command may run."""
    return {f"{package}.{module.name}" for package in ("src.cli", "benchmarks")
            for module in pkgutil.iter_modules([str(REPO_ROOT.joinpath(*package.split(".")))])}
