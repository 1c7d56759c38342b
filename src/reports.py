"""Re-render every committed report under reports/ from its raw results; optionally rerun them first.

    python -m src.reports                 # seconds: tables and plots from the committed raw files
    python -m src.reports rerun=true      # rerun the command in each report's provenance.json, then render
    python -m src.reports only=optimizers # one report (a folder name under reports/)

Design reports hold design.yaml + runs/; the compression report compression.json; data reports report.json.
"""

import json
import logging
import subprocess
import sys
from pathlib import Path

from src.cli import entry_point
from src.errors import ConfigError
from src.experiments.archive import REPORTS_ROOT

log = logging.getLogger("src.reports")
OPTIONS = ("rerun", "only")


def report_dirs(root: Path = REPORTS_ROOT) -> list[Path]:
    """Every folder under `root` that holds a renderable report."""
    markers = ("design.yaml", "compression.json", "report.json")
    return sorted({p.parent for marker in markers for p in root.rglob(marker)})


def render(report_dir: Path) -> None:
    """Re-write the tables and plots of one report from its raw files."""
    if (report_dir / "design.yaml").is_file():
        from src.experiments.report import write_report

        write_report(report_dir)
    elif (report_dir / "compression.json").is_file():
        from src.compress_report import render as render_compression

        render_compression(report_dir / "compression.json")
    else:
        from src.datamodules.report import render as render_data

        render_data(report_dir)


def rerun(report_dir: Path) -> None:
    """Run the command recorded in provenance.json (from the repository root)."""
    command = json.loads((report_dir / "provenance.json").read_text())["command"]
    log.info("Rerunning %s: %s", report_dir, command)
    subprocess.run(command, shell=True, check=True)


@entry_point(log)
def main(args: list[str]) -> int:
    options = dict(a.partition("=")[::2] for a in args)
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ConfigError(f"Unknown option(s) {sorted(unknown)}. Options: rerun=true, only=<report folder>.")
    dirs = [d for d in report_dirs() if options.get("only") in (None, d.name)]
    if not dirs:
        raise ConfigError(f"No report named '{options.get('only')}' under {REPORTS_ROOT}/.")
    for report_dir in dirs:
        if options.get("rerun") == "true":
            rerun(report_dir)
        render(report_dir)
        log.info("Rendered %s", report_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
