"""Run an experiment design, then write its report (runs.csv, summary.md, plots) under results/<design>/.

    python -m src.cli.design optimizers [workers=2] [arm=sgd seed=1] [report_only=true] [publish=true]

Finished runs are skipped, so rerunning an interrupted design completes only the missing runs.
`arm=` / `seed=` restrict to one arm / seed (what a W&B sweep agent calls, see src.cli.sweep_config).
`publish=true` copies the raw results into reports/<design>/ and renders the committed report there.
"""

import logging
import sys
from dataclasses import dataclass

from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.errors import ConfigError
from src.experiments.archive import REPORTS_ROOT, publish, record_provenance
from src.experiments.design_spec import Design, RunSpec, load_design
from src.experiments.runner import run_design
from src.experiments.summary import write_report

log = logging.getLogger("src.cli.design")


@dataclass
class DesignOptions:
    design: str = MISSING  # a name under configs/design/ (or a path to a design YAML)
    workers: int = 1
    arm: str | None = None
    seed: int | None = None
    report_only: bool = False
    publish: bool = False


def select_runs(design: Design, options: DesignOptions) -> list[RunSpec]:
    """The design's runs, restricted to `arm=` / `seed=` when given."""
    runs = [r for r in design.runs()
            if options.arm in (None, r.arm.name) and options.seed in (None, r.seed)]
    if not runs:
        raise ConfigError(f"No run of design '{design.name}' matches arm={options.arm} seed={options.seed}.")
    return runs


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, DesignOptions, positional="design").options
    design = load_design(options.design)
    runs = select_runs(design, options)
    if options.report_only:
        failed = []
    else:
        record_provenance(design.results_dir, args)
        failed = run_design(design, options.workers, runs)
    paths = write_report(design.results_dir)
    if options.publish:
        paths = publish(design.results_dir, REPORTS_ROOT / design.name)
    print(f"Summary: {paths['summary']}\nRuns table: {paths['runs']}")
    if failed:
        log.error("%d run(s) failed: %s", len(failed), ", ".join(f"{r.arm.name}/seed{r.seed}" for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
