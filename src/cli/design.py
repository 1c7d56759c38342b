"""Run an experiment design, then write its report (runs.csv, summary.md, plots) under results/<design>/.

    python -m src.cli.design optimizers [launcher=local|submitit|ray] [workers=2] [launcher.<key>=<value>]
                                        [arm=sgd seed=1] [report_only=true] [publish=true]
                                        [new_iteration=true]

Finished runs are skipped, so rerunning an interrupted design completes only the missing runs. A design with a
`tpe:` search runs (or finishes) its trials first; the best trial becomes the arm `tpe_best`.
`arm=` / `seed=` restrict to one arm / seed (what a W&B sweep agent calls, see src.cli.sweep_config).
`launcher=` / `workers=` / `launcher.<key>=` override the design's `launcher:` (docs/launchers.md).
The design's plan (arms, seeds, base, metrics, test, alpha, deviations) is frozen by its hash before the first run;
changing it afterwards needs `new_iteration=true`, and the published report logs every earlier iteration.
`publish=true` copies the raw results into reports/<design>/ and renders the committed report there.
"""

import logging
import sys
from dataclasses import dataclass

from omegaconf import MISSING

from src.cli import entry_point, parse_args, usage
from src.designs.design_spec import Design, RunSpec, load_design
from src.designs.runner import freeze_plan, run_design
from src.designs.search import run_search
from src.errors import ConfigError
from src.reporting.archive import REPORTS_ROOT, publish, record_provenance
from src.reporting.summary import write_report

log = logging.getLogger("src.cli.design")


@dataclass
class DesignOptions:
    design: str = MISSING  # a name under configs/design/ (or a path to a design YAML)
    launcher: str | None = None  # local | submitit | ray; null: the design's `launcher.name`
    workers: int | None = None  # null: the design's `launcher.workers`
    arm: str | None = None
    seed: int | None = None
    report_only: bool = False
    publish: bool = False
    new_iteration: bool = False  # the plan changed after runs finished: freeze it again as a new iteration


def select_runs(design: Design, options: DesignOptions) -> list[RunSpec]:
    """The design's runs, restricted to `arm=` / `seed=` when given."""
    runs = [r for r in design.runs()
            if options.arm in (None, r.arm.name) and options.seed in (None, r.seed)]
    if not runs:
        raise ConfigError(f"No run of design '{design.name}' matches arm={options.arm} seed={options.seed}.")
    return runs


def launcher_overrides(options: DesignOptions, rest: list[str]) -> list[str]:
    """`launcher=` / `workers=` and every `launcher.<key>=<value>`, as overrides of the design's `launcher:`."""
    wrong = [item for item in rest if not item.startswith("launcher.")]
    if wrong:
        raise ConfigError(f"Unknown argument(s) {', '.join(wrong)}. {usage(DesignOptions, 'design')} "
                          "And launcher.<key>=<value> (docs/launchers.md).")
    named = {"launcher.name": options.launcher, "launcher.workers": options.workers}
    return [f"{key}={value}" for key, value in named.items() if value is not None] + rest


@entry_point(log)
def main(args: list[str]) -> int:
    launcher = [arg for arg in args if arg.startswith("launcher.")]
    options = parse_args([arg for arg in args if arg not in launcher], DesignOptions, positional="design").options
    design = load_design(options.design, launcher=launcher_overrides(options, launcher))
    failed: list[str] = []
    if not options.report_only:
        record_provenance(design.results_dir, args)
        freeze_plan(design, options.new_iteration)
        if design.spec.tpe and options.arm is None:  # a TPE search first: its best trial is an arm
            failed += [f"search worker {k}" for k in run_search(design)]
        failed += [f"{r.arm.name}/seed{r.seed}" for r in run_design(design, select_runs(design, options))]
    paths = write_report(design.results_dir)
    if options.publish:
        paths = publish(design.results_dir, REPORTS_ROOT / design.name)
    print(f"Summary: {paths['summary']}\nRuns table: {paths['runs']}")
    if failed:
        log.error("%d run(s) failed: %s", len(failed), ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
