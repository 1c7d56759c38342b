"""Re-render every committed report under reports/ from its raw results; optionally rerun them first.

    python -m src.cli.reports                 # seconds: tables and plots from the committed raw files
    python -m src.cli.reports rerun=true      # rerun the command in each report's provenance.json, then render
    python -m src.cli.reports only=optimizers # one report (a folder name under reports/)

Design reports hold design.yaml + runs/; the compression report compression.json; data reports report.json.
"""

import logging
import sys
from dataclasses import dataclass

from src.cli import entry_point, parse_args
from src.errors import ConfigError
from src.reporting.archive import REPORTS_ROOT, render, report_dirs, rerun

log = logging.getLogger("src.cli.reports")


@dataclass
class ReportsOptions:
    rerun: bool = False  # rerun the command in each report's provenance.json first
    only: str | None = None  # one report: a folder name under reports/


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, ReportsOptions).options
    dirs = [d for d in report_dirs() if options.only in (None, d.name)]
    if not dirs:
        raise ConfigError(f"No report named '{options.only}' under {REPORTS_ROOT}/.")
    for report_dir in dirs:
        if options.rerun:
            rerun(report_dir)
        render(report_dir)
        log.info("Rendered %s", report_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
