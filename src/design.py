"""Run an experiment design, then write its report (runs.csv, summary.md, plots) under results/<design>/.

    python -m src.design optimizers [launcher=local|submitit|ray] [workers=2] [launcher.<key>=<value>]
                                    [arm=sgd seed=1] [report_only=true] [publish=true]

Finished runs are skipped, so rerunning an interrupted design completes only the missing runs. A design with a
`tpe:` search runs (or finishes) its trials first; the best trial becomes the arm `tpe_best`.
`arm=` / `seed=` restrict to one arm / seed (what a W&B sweep agent calls, see src.sweep_config).
`launcher=` / `workers=` / `launcher.<key>=` override the design's `launcher:` (docs/launchers.md).
`publish=true` copies the raw results into reports/<design>/ and renders the committed report there.
"""

import logging
import sys

from src.cli import entry_point
from src.errors import ConfigError
from src.experiments.archive import REPORTS_ROOT, publish, record_provenance
from src.experiments.design import Design, RunSpec, load_design
from src.experiments.report import write_report
from src.experiments.runner import run_design
from src.experiments.search import run_search

log = logging.getLogger("src.design")
OPTIONS = ("design", "launcher", "workers", "arm", "seed", "report_only", "publish")


def parse_args(argv: list[str]) -> dict[str, str]:
    """`<design>` or `design=<name>`, then key=value options (`launcher.<key>=<value>` kept as given)."""
    options = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep:
            key, value = "design", item
        if key not in OPTIONS and not key.startswith("launcher."):
            raise ConfigError(
                f"Unknown option '{key}'. Options: {', '.join(OPTIONS)}, launcher.<key> (e.g. `optimizers workers=2`)."
            )
        options[key] = value
    if "design" not in options:
        raise ConfigError("Name a design: `make design DESIGN=<name>` (see configs/design/).")
    return options


def select_runs(design: Design, options: dict[str, str]) -> list[RunSpec]:
    """The design's runs, restricted to `arm=` / `seed=` when given."""
    runs = [
        r
        for r in design.runs()
        if options.get("arm", r.arm.name) == r.arm.name and int(options.get("seed", r.seed)) == r.seed
    ]
    if not runs:
        raise ConfigError(f"No run of design '{design.name}' matches arm/seed {options}.")
    return runs


def launcher_overrides(options: dict[str, str]) -> list[str]:
    """`launcher=` and `workers=` as `launcher.name=` / `launcher.workers=`, plus every `launcher.<key>=`."""
    aliases = {"launcher": "launcher.name", "workers": "launcher.workers"}
    return [f"{aliases.get(k, k)}={v}" for k, v in options.items() if k in aliases or k.startswith("launcher.")]


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args)
    design = load_design(options["design"], launcher=launcher_overrides(options))
    failed: list[str] = []
    if options.get("report_only") != "true":
        record_provenance(design.results_dir, args)
        if design.spec.tpe and "arm" not in options:  # a TPE search first: its best trial is an arm
            failed += [f"search worker {k}" for k in run_search(design)]
        failed += [f"{r.arm.name}/seed{r.seed}" for r in run_design(design, select_runs(design, options))]
    paths = write_report(design.results_dir)
    if options.get("publish") == "true":
        paths = publish(design.results_dir, REPORTS_ROOT / design.name)
    print(f"Summary: {paths['summary']}\nRuns table: {paths['runs']}")
    if failed:
        log.error("%d run(s) failed: %s", len(failed), ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
