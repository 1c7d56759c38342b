"""Write a design's report: runs.csv, arms.csv, comparisons.csv, summary.md and the PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from src.provenance import DIFF_FILE
from src.reporting import stats
from src.reporting.design_log import preregistration_markdown
from src.reporting.plots import save_plots
from src.reporting.results import (
    LEARNED_FRACTION,
    VALIDATION_METRICS,
    Results,
    arm_table,
    baseline_tuning,
    compare_to_control,
    learning_check,
    load_results,
    training_losses,
    unpaired_rows,
)
from src.rundir import atomic_write_text, read_config


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"


def metrics_markdown(arms: pd.DataFrame) -> str:
    """Arms x metrics, each cell `mean ± std` over seeds (n seeds in the first column)."""
    cells = []
    for r in arms.itertuples():
        digits = 1 if r.metric == "duration_s" else 4
        cells.append(f"{_fmt(r.mean, digits)} ± {_fmt(r.std, digits)}")
    wide = arms.assign(cell=cells)
    table = wide.pivot(index="arm", columns="metric", values="cell").reindex(
        index=arms["arm"].unique(), columns=arms["metric"].unique()
    )
    counts = arms.groupby("arm")["n"].first()
    lines = ["| arm | n | " + " | ".join(table.columns) + " |", "|---|---:|" + "---:|" * len(table.columns)]
    lines += [f"| {arm} | {counts[arm]} | " + " | ".join(row) + " |" for arm, row in table.iterrows()]
    return "\n".join(lines)


TEST_HEADERS = {"t": "paired t p", "wilcoxon": "Wilcoxon p", "permutation": "permutation p", "aso": "ASO eps_min"}


def _test_cell(row: tuple, test: str) -> str:
    """A p-value test as `raw (Holm)`, ASO as its eps_min."""
    if test == "aso":
        return _fmt(row.aso_eps_min, 3)
    return f"{_p(getattr(row, f'{test}_p'))} ({_p(getattr(row, f'{test}_p_holm'))})"


def comparison_markdown(results: Results, arms: pd.DataFrame, comparisons: pd.DataFrame) -> str:
    """Primary metric per arm with its 95 % CI, every test against the control, and what the tests mean."""
    if results.control not in results.arms:
        return f"The control arm `{results.control}` has no finished run yet: no comparison."
    primary = arms[arms["metric"] == results.metric].set_index("arm")
    tests = [results.primary_test, *(t for t in TEST_HEADERS if t != results.primary_test)]
    headers = [f"**{TEST_HEADERS[t]}** (primary)" if t == results.primary_test else TEST_HEADERS[t] for t in tests]
    lines = [
        "| arm | mean [95% CI] | mean Δ vs control | pooled Δ [bootstrap 95% CI] | Cohen's d | "
        + " | ".join(headers)
        + f" | significant (α={results.alpha:g}) | McNemar p (accuracy, per seed) |",
        "|---|---|---:|---|---:|" + "---:|" * len(tests) + "---|---|",
    ]
    control, learned = primary.loc[results.control], learning_check(results).set_index("arm")["learned"]
    lines.append(
        f"| **{results.control}** (control){_stuck(learned[results.control])} | {_fmt(control['mean'])} "
        f"[{_fmt(control['ci_low'])}, {_fmt(control['ci_high'])}] | | | |" + " |" * len(tests) + " | |"
    )
    for row in comparisons.itertuples():
        arm = primary.loc[row.arm]
        lines.append(
            f"| {row.arm}{_stuck(learned[row.arm])} | {_fmt(arm['mean'])} [{_fmt(arm['ci_low'])}, "
            f"{_fmt(arm['ci_high'])}] | {row.diff_mean:+.4f} | {_fmt(row.pooled_diff)} [{_fmt(row.boot_low)}, "
            f"{_fmt(row.boot_high)}] | {_fmt(row.cohens_d, 2)} | " + " | ".join(_test_cell(row, t) for t in tests)
            + f" | {_decision(row)} | {row.mcnemar_p or 'n/a'} |"
        )
    return "\n".join(lines) + "\n\n" + tests_paragraph(results, comparisons)


def _stuck(learned: bool) -> str:
    """The mark of an arm that did not learn (see the training section), after its name."""
    return "" if learned else " (did not learn)"


def _decision(row: tuple) -> str:
    """The primary test's verdict; a comparison with an arm that did not learn is no evidence either way."""
    if not row.learned:
        return f"{'yes' if row.significant else 'no'}, not a test of the method"
    return "**yes**" if row.significant else "no"


def tests_paragraph(results: Results, comparisons: pd.DataFrame) -> str:
    """What is corrected and how, the primary test, m, alpha, the smallest attainable p (and a WARNING)."""
    m, alpha, test = results.family_size, results.alpha, results.primary_test
    n = int(comparisons["n"].min()) if len(comparisons) else 0
    floors = ", ".join(f"{TEST_HEADERS[t]} {stats.min_attainable_p(t, n):.3g}" for t in stats.P_TESTS)
    decision = (
        f"an arm is significant when its eps_min < {stats.ASO_THRESHOLD}"
        if test == "aso"
        else f"an arm is significant when its Holm-corrected {stats.TESTS[test]} p ≤ α (either direction: see Δ)"
    )
    text = (
        f"Primary test: **{stats.TESTS[test]}** (the design's `primary_test`), at α = {alpha:g} family-wise; "
        f"{decision}. The other columns are secondary and decide nothing. "
        f"Family: m = {m} planned comparisons (every non-control arm vs `{results.control}`); an undefined p "
        "(e.g. an arm identical to the control) or an arm without runs counts as p = 1 and stays in the family. "
        "Each p-value column is shown raw and, in brackets, Holm-corrected over those m comparisons "
        "(statsmodels), separately for the paired t-test, the Wilcoxon signed-rank test and the sign-flip "
        "permutation test of the mean difference (both exact up to 13 seeds); all are two-sided over seed-paired "
        "values. "
        "A constant non-zero difference has no variance: its t-test p is the permutation p. "
        "ASO eps_min (Almost Stochastic Order, Dror et al. 2019, deepsig; the loss counts lower as better): "
        "confidence 1 − α Bonferroni-corrected over m; below 0.5 the arm is better than the control, and deepsig "
        f"recommends requiring eps_min < {stats.ASO_THRESHOLD}; not a p-value, not Holm-corrected. "
        f"Smallest attainable p with n = {n} seeds: {floors}. Cohen's d = mean/std of the seed-paired "
        "differences; pooled Δ = the metric on all seeds' test predictions pooled, with a percentile-bootstrap CI "
        "clustered by test example (a resample draws examples, each with every seed's predictions of both arms; "
        "n/a when the seeds tested different examples). McNemar's test compares correct/wrong, i.e. accuracy: "
        "it is given on each seed's test predictions (uncorrected) when the primary metric is accuracy, else n/a. "
        "A comparison with an arm (or control) that did not learn is shown but marked not a test of the method: "
        "it measures that arm's failure to train, not the method."
    )
    warning = stats.significance_floor(test, n, alpha, m)
    return f"{text}\n\n**{warning}**" if warning else text


def selection_markdown(results: Results) -> str:
    """The arms ranked on the validation selection metric, and the arm that this selects."""
    selected = results.selected_arm()
    if selected is None:
        return f"No run recorded `{results.selection_metric}`: nothing can be selected on validation."
    table = arm_table(results, tuple(m for m in VALIDATION_METRICS if m in results.runs))
    best = results.values(selected, results.metric)
    return "\n".join([
        metrics_markdown(table), "",
        f"Selected on validation (`{results.selection_metric}`, best mean over seeds among the trained arms): "
        f"**`{selected}`**{_against_control(results, selected)}. Its `{results.metric}` on the test split: "
        f"{_fmt(float(best.mean()))} (mean of {len(best)} seed(s)).",
    ])


def _against_control(results: Results, selected: str) -> str:
    """Whether the selected arm beats the control on validation (empty when it is the control)."""
    if selected == results.control or results.control not in results.arms:
        return ""
    arm, control = (float(results.values(a, results.selection_metric).mean()) for a in (selected, results.control))
    better = arm > control if stats.higher_is_better(results.selection_metric) else arm < control
    verdict = "beats" if better else "does not beat"
    return f", which {verdict} the control `{results.control}` on validation ({_fmt(arm)} vs {_fmt(control)})"


def search_markdown(results: Results) -> str:
    """The TPE search's trials (trials.csv) and how its best trial is tested; empty without a search."""
    path = results.dir / "trials.csv"
    tpe = results.record.get("tpe")
    if not tpe or not path.is_file():
        return ""
    trials = pd.read_csv(path)
    params = [c for c in trials.columns if c.startswith("params_")]
    counts = trials["state"].value_counts()
    best = trials[trials["best"]]
    lines = [
        "## Search: Optuna TPE on validation", "",
        f"{len(trials)} trials ({', '.join(f'{n} {state.lower()}' for state, n in counts.items())}; "
        f"{tpe['n_trials']} asked), each trained with seed {tpe['train_seed']} and scored on "
        f"`{results.selection_metric}` (validation"
        + ("; hopeless ones pruned on their validation curve by the median pruner" if tpe["prune"] else "")
        + "); no trial read the test split.",
        "",
        "| trial | state | " + results.selection_metric + " | last step | " + " | ".join(
            p.removeprefix("params_") for p in params) + " |",
        "|---:|---|---:|---:|" + "---|" * len(params),
    ]
    for row in trials.to_dict("records"):
        mark = " (best)" if row["best"] else ""
        cells = [f"{row[p]:.4g}" if isinstance(row[p], float) else str(row[p]) for p in params]
        lines.append(f"| {row['number']}{mark} | {row['state']} | {_fmt(row['value'])} | {row['last_step']} | "
                     + " | ".join(cells) + " |")
    if best.empty:
        return "\n".join([*lines, "", "No trial completed: the search chose nothing yet.", ""])
    chosen = best.iloc[0]
    tested = "" if "tpe_best" not in results.arms else (
        f" It ran as the arm `tpe_best` on the design's seeds, which the search did not use, and is compared with "
        f"the control `{results.control}` on the test split below."
    )
    return "\n".join([*lines, "", f"Best trial: #{chosen['number']} ({results.selection_metric} "
                       f"{_fmt(chosen['value'])}).{tested}", ""])


def training_markdown(results: Results) -> str:
    """First and final training loss per arm (mean ± std over seeds) and the learning check: does every arm learn?"""
    losses, check = training_losses(results), learning_check(results).set_index("arm")
    metric = "val/" + results.metric.rsplit("/", 1)[-1]
    lines = ["| arm | n | first logged train/loss | final train/loss (last quarter of logged steps) | class-prior "
             f"entropy | {metric} (majority class) | learned |", "|---|---:|---:|---:|---:|---:|---|"]
    for arm in results.arms:
        runs, row = losses[losses["arm"] == arm], check.loc[arm]
        first, last = ("–", "–") if runs.empty else (
            f"{_fmt(runs[c].mean())} ± {_fmt(runs[c].std())}" for c in ("first", "last"))
        seeds = "seed" + "s" * (len(row.stuck_seeds) > 1) + " " + ", ".join(map(str, row.stuck_seeds))
        verdict = "**did not learn**" if not row.learned else f"yes ({seeds} did not)" if row.stuck_seeds else "yes"
        lines.append(f"| {arm} | {len(results.values(arm))} | {first} | {last} | {_fmt(row.prior_entropy, 3)} "
                     f"| {_fmt(row.val_metric)} ({_fmt(row.majority)}) | {verdict} |")
    chance = math.log(len(results.label_names))
    return "\n".join(lines) + (
        f"\n\n`train/loss` is the plain NLL of each training batch (the optimised objective, with class weights, "
        f"smoothing or penalties, is logged as `train/objective`). Chance on balanced training data is ln "
        f"{len(results.label_names)} = {chance:.3f}; on an imbalanced training split, predicting its class prior "
        "already scores that prior's entropy (e.g. 0.500 at 4:1). The class-prior entropy is that of the training "
        "split's class shares (the validation shares, times `data.train_class_fractions` when the training split "
        f"was sliced). An arm **did not learn** when its mean final training loss is at least "
        f"{LEARNED_FRACTION * 100:.0f} % of that entropy, or its mean `{metric}` is no better than predicting the "
        "majority class on validation (in brackets); baselines, which log no training loss, are judged on "
        "validation alone, and a fusion (fitted on validation, so not scored there) by its members. The "
        "comparisons of an arm that did not learn are shown but are not a test of the method. A seed that fails "
        "either check on its own, inside an arm that learned on average, is named beside the verdict.")


def rows_warning(control: str, unpaired: list[str]) -> str:
    """A warning naming the arms that read other rows than the control at a seed (their comparison is unpaired)."""
    return (f"**Warning:** these arms read other rows than the control `{control}` (their labels differ row by "
            "row), so their runs were made by code that split the data differently and the seed is not a "
            "like-for-like comparison; rerun them with the same code: " + "; ".join(unpaired) + ".")


def tuning_markdown(results: Results) -> str:
    """Each baseline's validation-chosen settings, flagging a choice at an end of its grid (an under-tuned control
    makes every "beats the control" claim weaker than it reads)."""
    tuning = baseline_tuning(results)
    if tuning.empty:
        return ""
    lines = ["| arm | seed | setting | grid | chosen on validation |", "|---|---:|---|---|---|"]
    for row in tuning.itertuples():
        edge = " **(end of the grid)**" if row.at_edge else ""
        lines.append(f"| {row.arm} | {row.seed} | `{row.setting}` | {', '.join(map(str, row.grid))} "
                     f"| {row.chosen}{edge} |")
    edges = tuning[tuning["at_edge"]].groupby(["arm", "setting"])["seed"].count()
    warnings = [f"**Warning:** `{arm}` chose `{setting}` at an end of its grid in {count} of "
                f"{len(results.values(arm))} seeds: its optimum may lie outside the grid, so this control may be "
                "under-tuned; widen the grid in the design's YAML." for (arm, setting), count in edges.items()]
    return "\n".join(["Baseline settings chosen on validation:", "", *lines, *(["", *warnings] if warnings else [])])


def provenance_markdown(out: Path) -> str:
    """Command, commit, packages and machine from provenance.json (written when the design ran)."""
    path = out / "provenance.json"
    if not path.is_file():
        return "No provenance.json: this design was run before provenance was recorded."
    record = json.loads(path.read_text())
    git, machine = record["git"], record["machine"]
    isa = ", ".join(name for name in ("avx2", "avx512", "vnni", "amx") if machine.get(name)) or "none of note"
    return "\n".join([
        f"- command: `{record['command']}`",
        f"- code: commit `{git['commit']}`{_uncommitted(out) if git['dirty'] else ''}",
        f"- machine: {machine['cpu']}, {machine['cores']} cores (ISA: {isa}); Python {record['python']}",
        "- packages: " + ", ".join(f"{name} {version}" for name, version in record["packages"].items()),
    ])


def precision_markdown(results: Results) -> str:
    """The `trainer.precision` the trained runs ran in (per arm when arms differ): what their duration_s timed."""
    trained = results.runs[results.runs["kind"] == "train"]
    by_arm: dict[str, set[str]] = {}
    for run in trained.itertuples():
        saved = read_config(results.run_path(run.run_dir))
        by_arm.setdefault(run.arm, set()).add(str(saved["trainer"]["precision"]))
    values = {value for arm_values in by_arm.values() for value in arm_values}
    if not values:
        return ""
    shown = values.pop() if len(values) == 1 else ", ".join(f"{arm} {'/'.join(sorted(v))}" for arm, v in by_arm.items())
    return f"- precision of the trained runs (`trainer.precision`, what their duration_s was timed at): {shown}"


def _uncommitted(out: Path) -> str:
    """How the provenance line names uncommitted changes: with their diff when it was recorded."""
    diff = out / DIFF_FILE
    return f" with uncommitted changes ([{DIFF_FILE}]({DIFF_FILE}))" if diff.is_file() else " with uncommitted changes"


def write_report(results_dir: str | Path, n_resamples: int = 1000) -> dict[str, Path]:
    """Collect the finished runs and write every table and plot into results_dir."""
    results = load_results(results_dir)
    out = results.dir
    arms = arm_table(results)
    comparisons = compare_to_control(results, n_resamples)
    for name, table in (("runs", results.runs), ("arms", arms), ("comparisons", comparisons)):
        atomic_write_text(out / f"{name}.csv", table.to_csv(index=False))
    plots = save_plots(results, out / "plots")
    seeds = sorted(int(s) for s in results.runs["seed"].unique())
    tuning, unpaired = tuning_markdown(results), unpaired_rows(results)
    text = [
        f"# Design `{results.name}`",
        "",
        results.record.get("description", "").strip(),
        "",
        f"Control arm: `{results.control}`. Primary metric: `{results.metric}` (test split). "
        f"Selection metric: `{results.selection_metric}` (validation split). Seeds: {seeds}. "
        f"Runs: {len(results.runs)}. Every choice inside a run (best checkpoint, early stopping, a baseline's "
        "settings, fusion weights) was made on the validation split; each run read the test split once.",
        "",
        "## Pre-registration",
        "",
        preregistration_markdown(out, results.record),
        "",
        "## Validation split: selection",
        "",
        *([rows_warning(results.control, unpaired), ""] if unpaired else []),
        selection_markdown(results),
        "",
        *([tuning, ""] if tuning else []),
        *([search_markdown(results)] if results.record.get("tpe") else []),
        "## Training split: does every arm learn?",
        "",
        training_markdown(results),
        "",
        "## Test split: metrics (mean ± std over seeds)",
        "",
        metrics_markdown(arms),
        "",
        f"## Test split: `{results.metric}` against the control",
        "",
        comparison_markdown(results, arms, comparisons),
        "",
        "## Provenance",
        "",
        provenance_markdown(out),
        *([precision] if (precision := precision_markdown(results)) else []),
        "",
        "## Plots",
        "",
    ]
    text += [f"![{name}](plots/{path.name})" for name, path in plots.items()]
    atomic_write_text(out / "summary.md", "\n".join(text) + "\n")
    return {"runs": out / "runs.csv", "summary": out / "summary.md", **plots}
