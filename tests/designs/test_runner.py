"""The tiny design end to end: runs, resume after an interruption, report files, and the notebook."""

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from nbclient import NotebookClient
from omegaconf import DictConfig

from src import provenance as code_provenance
from src.config import REPO_ROOT
from src.designs import runner
from src.designs.design_spec import Design, load_design
from src.designs.evaluation import score
from src.errors import ConfigError
from src.reporting import design_log
from src.reporting.archive import publish, record_provenance
from src.reporting.design_log import LOG_FILE
from src.reporting.plan import PLAN_FILE, plan_changes, plan_hash
from src.reporting.results import config_hash, load_results, training_losses, unpaired_rows
from src.reporting.summary import precision_markdown, write_report
from src.rundir import read_config, save_config, save_predictions


def _tiny(results_root: Path, data_cache: Path) -> Design:
    design = load_design("tiny", results_root=results_root)
    design.spec.base.append(f"data.cache_dir={data_cache}")
    return design


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> tuple[Design, list[str]]:
    """Run part of the tiny design (as if killed midway), then rerun it all; record what the rerun ran."""
    design = _tiny(tmp_path_factory.mktemp("results"), data_cache)
    first = design.runs()[:3]
    assert runner.run_design(design, select=first) == []
    executed = []
    original = runner.execute

    def spy(design: Design, run) -> dict:
        executed.append(f"{run.arm.name}/seed{run.seed}")
        return original(design, run)

    runner.execute = spy
    try:
        assert runner.run_design(design) == []
    finally:
        runner.execute = original
    write_report(design.results_dir, n_resamples=200)
    return design, executed


def test_rerun_completes_only_the_missing_runs(tiny_results: tuple[Design, list[str]]) -> None:
    design, executed = tiny_results
    assert executed == ["high_lr/seed2", "nb/seed1", "nb/seed2"]
    assert all(run.done for run in design.runs())


def test_runs_are_ordinary_training_runs_grouped_for_wandb(tiny_results: tuple[Design, list[str]]) -> None:
    design, _ = tiny_results
    run_dir = design.results_dir / "runs" / "high_lr" / "seed2"
    config = (run_dir / "config.yaml").read_text()
    assert "group: tiny" in config and "job_type: high_lr" in config and "lr: 0.003" in config
    assert {"metrics.json", "predictions_test.csv", "csv"} <= {p.name for p in run_dir.iterdir()}


def test_report_files(tiny_results: tuple[Design, list[str]]) -> None:
    design, _ = tiny_results
    out = design.results_dir
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and set(runs["arm"]) == {"control", "high_lr", "nb"}
    assert {"config_hash", "duration_s", "test/acc", "test/f1_macro", "test/auroc", "seed"} <= set(runs.columns)
    # One hash per arm: seeds do not change it, arms do.
    assert runs.groupby("arm")["config_hash"].nunique().eq(1).all() and runs["config_hash"].nunique() == 3
    summary = (out / "summary.md").read_text()
    assert "| **control** (control)" in summary and "| high_lr |" in summary and "| nb |" in summary
    for name in ("metric_ci", "learning_curves", "roc", "confusion_matrices"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 5000
    # Baselines write the same metric names as the transformer runs.
    nb = json.loads((out / "runs" / "nb" / "seed1" / "metrics.json").read_text())["test"]
    control = json.loads((out / "runs" / "control" / "seed1" / "metrics.json").read_text())["test"]
    assert set(nb) == set(control)
    # ... and are evaluated on exactly the transformer runs' test rows (same labels in the same order).
    for seed in (1, 2):
        rows = [
            pd.read_csv(out / "runs" / arm / f"seed{seed}" / "predictions_test.csv")["label"]
            for arm in ("nb", "control")
        ]
        assert rows[0].tolist() == rows[1].tolist()


def test_the_report_names_the_precision_its_trained_runs_were_timed_at(
    tiny_results: tuple[Design, list[str]], tmp_path: Path
) -> None:
    design, _ = tiny_results
    saved = read_config(design.results_dir / "runs" / "high_lr" / "seed1")["trainer"]["precision"]
    line = "- precision of the trained runs (`trainer.precision`, what their duration_s was timed at): "
    assert f"\n{line}{saved}\n" in (design.results_dir / "summary.md").read_text()
    copy = shutil.copytree(design.results_dir, tmp_path / "tiny")
    for seed in (1, 2):  # one arm trained in another precision: each arm is named with its own
        config = copy / "runs" / "high_lr" / f"seed{seed}" / "config.yaml"
        config.write_text(config.read_text().replace(f"precision: {saved}", "precision: 64-true"))
    assert precision_markdown(load_results(copy)) == f"{line}control {saved}, high_lr 64-true"


def test_training_loss_table_reads_each_trained_runs_csv_log(tiny_results: tuple[Design, list[str]]) -> None:
    design, _ = tiny_results
    losses = training_losses(load_results(design.results_dir))
    assert sorted(set(losses["arm"])) == ["control", "high_lr"]  # the NB baseline has no training loss
    log = pd.read_csv(design.results_dir / "runs" / "high_lr" / "seed2" / "csv" / "metrics.csv")["train/loss"].dropna()
    row = losses[(losses["arm"] == "high_lr") & (losses["seed"] == 2)].iloc[0]
    assert row["first"] == log.iloc[0] and row["last"] == log.iloc[-max(1, len(log) // 4):].mean()
    summary = (design.results_dir / "summary.md").read_text()
    assert "## Training split: does every arm learn?" in summary
    assert "Chance on balanced training data is ln 2" in summary


def test_interrupted_run_resumes_from_its_checkpoint(
    tmp_path: Path, data_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    design = _tiny(tmp_path, data_cache)
    run = design.runs()[0]
    (run.run_dir / "checkpoints").mkdir(parents=True)
    # intact and past step 0: resume skips damaged checkpoints and those of a failed start
    torch.save({"global_step": 3}, run.run_dir / "checkpoints" / "interrupted.ckpt")
    seen = []
    monkeypatch.setattr(runner, "train", lambda cfg, *_: seen.append(cfg) or {})
    runner.execute(design, run)
    assert seen[0].ckpt_path == "last" and seen[0].run_dir == str(run.run_dir)


@pytest.mark.slow  # a Jupyter kernel: ~12 s (make test < 8 min; in make test-all)
def test_notebook_executes_on_the_tiny_results(
    tiny_results: tuple[Design, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nbclient runs the notebook in a kernel of this very interpreter (the venv), on the tiny design."""
    design, _ = tiny_results
    kernel_dir = tmp_path / "kernels" / "lab-venv"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "lab venv",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("DESIGN_RESULTS", str(design.results_dir))
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    NotebookClient(
        notebook, kernel_name="lab-venv", timeout=120, resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4
    assert any("high_lr" in o.get("data", {}).get("text/markdown", "") for o in outputs)


def test_a_finished_run_made_with_another_config_is_not_silently_skipped(
    tiny_results: tuple[Design, list[str]],
) -> None:
    design, _ = tiny_results
    assert runner.check_finished_configs(design, design.runs()) == []  # unchanged: nothing stale
    changed = load_design("tiny", results_root=design.results_dir.parent)
    changed.spec.base.extend([f"data.cache_dir={design.spec.base[-1].split('=', 1)[1]}", "data.max_length=64"])
    with pytest.raises(ConfigError, match="different config"):
        runner.check_finished_configs(changed, changed.runs())


def test_a_run_saved_before_text_columns_and_targets_is_not_stale(tiny_results: tuple[Design, list[str]]) -> None:
    design, _ = tiny_results
    path = design.runs()[0].run_dir / "config.yaml"
    saved = path.read_text()
    old = yaml.safe_load(saved)
    old["data"]["text_column"] = old["data"].pop("text_columns")[0]
    del old["data"]["_target_"], old["model"]["_target_"]  # saved before models and data came by _target_
    path.write_text(yaml.safe_dump(old))
    try:
        assert runner.check_finished_configs(design, design.runs()) == []
    finally:
        path.write_text(saved)


# Two (fake) training arms, a baseline choosing its smoothing on validation, and a fusion of the two arms.
PROVENANCE = """
base: [experiment=imdb_tiny, data.limit_train=64, data.limit_val=32, data.limit_test=64, logger=csv,
       data.cache_dir={cache}]
seeds: [1]
control: a
metric: test/acc
selection_metric: val/acc
arms:
  a: []
  b: [model.optimizer.lr={lr}]
  nb: {{baseline: tfidf_nb, args: {args}, select: {{clf__alpha: [0.1, 1.0]}}}}
  avg: {{fusion: weighted_average, members: [a, b]}}
"""


def _fake_train(cfg: DictConfig, *_: object) -> dict:
    """A training run without the training: its config.yaml, random predictions on fixed labels, metrics.json."""
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    rng, labels = np.random.default_rng(0), list(cfg.data.label_names)
    for split, n in (("validation", 32), ("test", 64)):
        probs, truth = rng.dirichlet([1.0, 1.0], n), np.arange(n) % 2
        save_predictions(run_dir, split, probs, truth, labels)
    summary = {"seed": cfg.seed, "run_dir": str(run_dir), "test": score(probs, truth, labels)}
    (run_dir / "metrics.json").write_text(json.dumps(summary))
    return summary


Provenance = tuple[Callable[..., Design], list[str]]


@pytest.fixture
def provenance(tmp_path: Path, data_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Provenance:
    """A loader of the provenance design (with its arms' settings) and the arms that each run_design executes."""
    monkeypatch.setattr(runner, "train", _fake_train)
    executed: list[str] = []
    execute = runner.execute
    monkeypatch.setattr(runner, "execute", lambda design, run: executed.append(run.arm.name) or execute(design, run))

    def load(lr: float = 3e-3, args: str = "{}") -> Design:
        path = tmp_path / "provenance.yaml"
        path.write_text(PROVENANCE.format(cache=data_cache, lr=lr, args=args))
        return load_design(path, results_root=tmp_path / "results")

    return load, executed


def _saved(run: Path, name: str = "config.yaml") -> dict:
    """A saved YAML or JSON file of a run (or results) directory."""
    return (yaml.safe_load if name.endswith("yaml") else json.loads)((run / name).read_text())


def test_every_arm_kind_saves_the_config_of_its_numbers_and_runs_csv_hashes_it(provenance: Provenance) -> None:
    load, executed = provenance
    design = load()
    assert runner.run_design(design) == [] and executed == ["a", "b", "nb", "avg"]
    runs = design.results_dir / "runs"
    nb, avg = runs / "nb" / "seed1", runs / "avg" / "seed1"
    # Baseline: the base config it read its data with, plus its spec; the grid scored on validation only.
    assert _saved(nb)["data"]["limit_train"] == 64 and _saved(nb)["arm"] == {
        "kind": "baseline",
        "baseline": "tfidf_nb",
        "args": {},
        "select": {"clf__alpha": [0.1, 1.0]},
        "metric": "val/acc",
    }
    metrics = _saved(nb, "metrics.json")
    assert [p["params"] for p in metrics["selection"]["grid"]] == [{"clf__alpha": 0.1}, {"clf__alpha": 1.0}]
    scores = [p["val/acc"] for p in metrics["selection"]["grid"]]
    assert metrics["selection"]["chosen"] == metrics["selection"]["grid"][scores.index(max(scores))]["params"]
    assert metrics["validation"]["val/acc"] == pytest.approx(max(scores))
    assert set(metrics["validation"]) == {k.replace("test/", "val/", 1) for k in metrics["test"]}
    # Fusion: method and the config hash of each member run it fused; the fitted weights in metrics.json.
    members = {"a": config_hash(runs / "a" / "seed1"), "b": config_hash(runs / "b" / "seed1")}
    assert _saved(avg)["arm"] == {"kind": "fusion", "fusion": "weighted_average", "members": members}
    assert list(_saved(avg, "metrics.json")["fitted"]["weights"]) == [str(runs / m / "seed1") for m in members]
    # runs.csv: the hash of each run's stored config (an edit of it shows; seeds and paths do not count).
    table = load_results(design.results_dir).runs
    assert table["config_hash"].tolist() == [config_hash(design.results_dir / d) for d in table["run_dir"]]
    before = config_hash(nb)
    (nb / "config.yaml").write_text(re.sub(r"(?m)^seed: 1$", "seed: 7", (nb / "config.yaml").read_text()))
    assert config_hash(nb) == before
    (nb / "config.yaml").write_text((nb / "config.yaml").read_text().replace("tfidf_nb", "tfidf_logreg"))
    assert load_results(design.results_dir).runs.set_index("arm").loc["nb", "config_hash"] != before
    # A baseline made before configs were saved: refused by the report, redone by the runner.
    (nb / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="older version"):
        load_results(design.results_dir)
    executed.clear()
    assert runner.run_design(design) == [] and executed == ["nb"]
    assert config_hash(nb) == before


def test_changed_arms_are_never_silently_reused(provenance: Provenance) -> None:
    load, executed = provenance
    assert runner.run_design(load()) == []
    executed.clear()
    assert runner.run_design(load()) == [] and executed == []  # unchanged: all reused
    # A baseline whose arguments changed is redone (cheap), with the new arguments.
    assert runner.run_design(load(args="{tfidf__min_df: 1}")) == [] and executed == ["nb"]
    nb = load().results_dir / "runs" / "nb" / "seed1"
    assert _saved(nb)["arm"]["args"] == _saved(nb, "metrics.json")["args"] == {"tfidf__min_df": 1}
    # A training arm whose config changed is refused, naming its runs and the fix; nothing is touched.
    changed = load(lr=1e-3, args="{tfidf__min_df: 1}")
    b = changed.run_of("b", 1)
    with pytest.raises(ConfigError, match=rf"different config.*{re.escape(str(b.run_dir))}.*Delete those run dir"):
        runner.run_design(changed)
    assert changed.run_of("avg", 1).done
    # A fusion whose member was re-run with another config is stale ...
    old = _saved(changed.run_of("avg", 1).run_dir)["arm"]["members"]["b"]
    (b.run_dir / "metrics.json").unlink()
    _fake_train(changed.compose_run(b))
    assert [r.arm.name for r in runner.check_finished_configs(changed, changed.runs())] == ["avg"]
    # ... and so is one whose member is being re-run: after the fix (delete), both are redone, in order.
    for path in sorted(b.run_dir.iterdir()):
        path.unlink()
    b.run_dir.rmdir()
    executed.clear()
    assert runner.run_design(changed) == [] and executed == ["b", "avg"]
    assert _saved(changed.run_of("avg", 1).run_dir)["arm"]["members"]["b"] == config_hash(b.run_dir) != old


def test_published_report_is_self_contained_and_rerenders_identically(
    tiny_results: tuple[Design, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = shutil.copytree(tiny_results[0].results_dir, tmp_path / "results" / "tiny")
    answers = {"status": " M src/seeds.py\n", "rev-parse": "abc123\n", "diff": "diff --git a/src/seeds.py\n"}
    monkeypatch.setattr(code_provenance, "_git", lambda command, *args: answers[command])  # a dirty tree
    record_provenance(results, ["tiny", "publish=true"])
    report = tmp_path / "reports" / "tiny"
    publish(results, report)
    assert not list(report.rglob("*.ckpt")) and (report / "runs" / "control" / "seed1" / "config.yaml").is_file()
    summary = (report / "summary.md").read_text()
    assert "Selected on validation (`val/f1_macro`" in summary
    assert "python -m src.cli.design tiny publish=true" in summary
    assert (report / code_provenance.DIFF_FILE).read_text() == answers["diff"]  # the diff travels with the report
    assert "commit `abc123` with uncommitted changes ([uncommitted.diff](uncommitted.diff))" in summary
    shutil.rmtree(results)  # the report must not need the original run folders
    files = {p: p.read_bytes() for p in report.rglob("*") if p.is_file()}
    write_report(report, n_resamples=1000)
    assert {p: p.read_bytes() for p in report.rglob("*") if p.is_file()} == files


def test_a_plan_is_frozen_before_the_first_run_and_a_changed_plan_needs_a_new_iteration(
    provenance: Provenance,
) -> None:
    load, _ = provenance
    design = load()
    digest = runner.freeze_plan(design)
    frozen = _saved(design.results_dir, PLAN_FILE)
    assert frozen["plan_hash"] == digest == plan_hash(runner.design_record(design)) and frozen["finished_runs"] == 0
    assert runner.run_design(design) == [] and runner.freeze_plan(design) == digest  # unchanged: nothing to do
    changed = load(args="{tfidf__min_df: 1}")
    with pytest.raises(ConfigError, match=r"4 finished run\(s\) and its plan changed since it was frozen "
                                          r"\(arms: changed nb\).*new_iteration=true"):
        runner.freeze_plan(changed)
    assert _saved(design.results_dir, PLAN_FILE) == frozen  # refused: the frozen plan stands
    assert runner.freeze_plan(changed, new_iteration=True) != digest
    assert _saved(design.results_dir, PLAN_FILE)["finished_runs"] == 4  # the runs it may reuse, on record


def test_a_plan_hash_covers_what_is_tested_not_prose_or_empty_keys() -> None:
    record = {"name": "d", "description": "why", "seeds": [1, 2], "control": "a", "arms": {"a": {"kind": "train"}}}
    same = {**record, "description": "reworded", "deviations": [], "launcher": {"workers": 4},
            "arms": {"a": {"kind": "train", "overrides": [], "select": {}}}}
    assert plan_hash(same) == plan_hash(record)
    assert plan_hash({**record, "seeds": [1, 2, 3]}) != plan_hash(record)
    assert plan_changes(record, {**record, "seeds": [1, 2, 3], "deviations": ["head + tail: CPU time"]}) == (
        "seeds: [1, 2] -> [1, 2, 3]; deviations: None -> ['head + tail: CPU time']")


def test_publishing_over_an_earlier_report_logs_it_as_an_iteration_in_the_report(
    provenance: Provenance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load, _ = provenance
    report = tmp_path / "reports" / "provenance"

    def run_and_publish(design: Design, new_iteration: bool = False) -> str:
        record_provenance(design.results_dir, [design.name, "publish=true"])
        digest = runner.freeze_plan(design, new_iteration)
        assert runner.run_design(design) == []
        publish(design.results_dir, report)  # renders the report there
        return digest

    first = run_and_publish(load())
    summary = (report / "summary.md").read_text()
    assert f"Plan hash `{first}`" in summary and "before the design's first run" in summary
    assert "Iteration 1 of this design" in summary and not (report / LOG_FILE).exists()
    assert "| avg | 1 | – | – | n/a | n/a (n/a) | yes |" in summary  # a fusion is judged by its members
    monkeypatch.setattr(design_log, "last_commit", lambda path: ("abc1234", "2026-12-01"))  # the report, committed
    earlier = design_log.result_line(report)
    second = run_and_publish(load(args="{tfidf__min_df: 1}"), new_iteration=True)
    log = yaml.safe_load((report / LOG_FILE).read_text())
    assert log == [{"published": "2026-12-01", "commit": "abc1234", "code": log[0]["code"], "plan_hash": first,
                    "changed_next": "arms: changed nb", "result": earlier}]
    assert earlier.startswith("significant vs control after Holm: ")
    summary = (report / "summary.md").read_text()
    assert f"Plan hash `{second}`" in summary
    assert "after 4 run(s) of an earlier iteration had finished, which this one reuses" in summary
    assert "Iteration 2 of this design" in summary and f"| `{first}` | arms: changed nb | {earlier} |" in summary
    publish(load(args="{tfidf__min_df: 1}").results_dir, report)  # the same earlier report is logged once
    assert len(yaml.safe_load((report / LOG_FILE).read_text())) == 1


def test_arms_that_read_other_rows_than_the_control_are_named_in_the_report(provenance: Provenance) -> None:
    load, _ = provenance
    design = load()
    assert runner.run_design(design) == []
    # The fake training runs predict made-up labels; the baseline read the real rows: not a paired comparison.
    assert unpaired_rows(load_results(design.results_dir)) == ["validation split, seed 1: nb", "test split, seed 1: nb"]
    control, nb = design.run_of("a", 1).run_dir, design.run_of("nb", 1).run_dir
    for split in ("validation", "test"):
        shutil.copy(control / f"predictions_{split}.csv", nb / f"predictions_{split}.csv")
    assert unpaired_rows(load_results(design.results_dir)) == []
