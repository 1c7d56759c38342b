"""The generated W&B sweep runs exactly the design's runs, through `python -m src.cli.design`."""

from pathlib import Path

import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from src.cli import parse_args, sweep_config
from src.cli.design import DesignOptions, select_runs
from src.designs.design_spec import load_design


def test_sweep_is_a_grid_over_arms_and_seeds(tmp_path: Path) -> None:
    out = tmp_path / "sweep.yaml"
    assert sweep_config.main(["fusion", f"out={out}"]) == 0
    sweep = yaml.safe_load(out.read_text())
    design = load_design("fusion")
    assert sweep["method"] == "grid" and sweep["metric"] == {"name": "val/f1_macro", "goal": "maximize"}
    assert sweep["metric"]["name"] == design.spec.selection_metric != design.metric  # chosen on validation
    assert sweep["parameters"]["arm"]["values"] == ["lr_5e-5", "lr_1e-4", "lr_2e-5"]  # fusions need members
    assert sweep["parameters"]["seed"]["values"] == design.spec.seeds
    assert sweep["command"][-3:] == ["src.cli.design", "fusion", "${args_no_hyphens}"]


def test_an_agent_command_selects_exactly_one_run_of_the_design(tmp_path: Path) -> None:
    sweep = sweep_config.sweep_config(load_design("optimizers"))
    args = create_sweep_command_args({"args": {"arm": {"value": "sgd"}, "seed": {"value": 2}}})["args_no_hyphens"]
    options = parse_args([sweep["command"][-2], *args], DesignOptions, positional="design").options
    runs = select_runs(load_design(options.design), options)
    assert [(r.arm.name, r.seed) for r in runs] == [("sgd", 2)]
