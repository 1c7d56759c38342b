"""Write the W&B sweep YAML equivalent to a design: a grid over its arms and seeds.

    python -m src.cli.sweep_config optimizers [out=sweep.yaml]
    wandb sweep results/optimizers/sweep.yaml && wandb agent <sweep id>

Each agent call runs `python -m src.cli.design <design> arm=<arm> seed=<seed>`: the very run `make design`
would do (same run dir, W&B group = design, job type = arm), so both can fill the same results.
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING

from src.cli import entry_point, parse_args
from src.designs.design_spec import Design, load_design

log = logging.getLogger("src.cli.sweep_config")


@dataclass
class SweepOptions:
    design: str = MISSING  # a name under configs/design/
    out: Path | None = None  # default results/<design>/sweep.yaml


def sweep_config(design: Design) -> dict[str, Any]:
    """The sweep as a dict: grid method, the design's validation selection metric (W&B reads a run's last value:
    the selected checkpoint's validation), arm and seed values, the command to run."""
    arms = [name for name, arm in design.arms.items() if arm.kind != "fusion"]
    metric = design.spec.selection_metric  # never a test metric: the sweep chooses, so it chooses on validation
    goal = "minimize" if metric.endswith("loss") else "maximize"
    return {
        "name": design.name,
        "description": design.spec.description.strip()
        + " Fusion arms need their members first: run `make design` after the sweep.",
        "method": "grid",
        "metric": {"name": metric, "goal": goal},
        "parameters": {"arm": {"values": arms}, "seed": {"values": list(design.spec.seeds)}},
        "command": ["${env}", "${interpreter}", "-m", "src.cli.design", design.name, "${args_no_hyphens}"],
    }


@entry_point(log)
def main(args: list[str]) -> int:
    options = parse_args(args, SweepOptions, positional="design").options
    design = load_design(options.design)
    out = options.out or design.results_dir / "sweep.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(sweep_config(design), sort_keys=False))
    print(f"W&B sweep config: {out}\nStart it with: wandb sweep {out} && wandb agent <sweep id>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
