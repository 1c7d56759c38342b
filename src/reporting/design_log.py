"""The design log: earlier published iterations of a design, and the report's pre-registration section.

Publishing over an earlier report of the same design appends that report to reports/<design>/design_log.yaml
(date, commit, plan hash, what changed, its result), so a re-run after seeing test results is visible in the
report rather than only in git history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from src.provenance import last_commit
from src.reporting.plan import PLAN_FILE, plan_changes, plan_hash
from src.rundir import atomic_write_text

LOG_FILE = "design_log.yaml"  # in reports/<design>/: earlier published iterations, oldest first


def result_line(report_dir: Path, alpha: float = 0.05) -> str:
    """A published report's outcome from its comparisons.csv: which arms beat the control after Holm."""
    path = report_dir / "comparisons.csv"
    if not path.is_file():
        return "no comparisons"
    table = pd.read_csv(path)
    # Reports from before the `significant` column judged by the paired t-test, Holm-adjusted.
    significant = table["significant"].astype(bool) if "significant" in table else table["t_p_holm"] < alpha
    best = table.loc[table["diff_mean"].idxmax()]
    return (f"significant vs control after Holm: {', '.join(table.loc[significant, 'arm']) or 'none'}; "
            f"largest mean Δ: {best['arm']} {best['diff_mean']:+.4f}")


def publication_entry(report_dir: Path, new_record: dict[str, Any]) -> dict[str, Any]:
    """The log entry of the report now in `report_dir`, about to be replaced by a publication of `new_record`."""
    record = yaml.safe_load((report_dir / "design.yaml").read_text())
    provenance = json.loads((report_dir / "provenance.json").read_text())
    published = last_commit(report_dir / "provenance.json")
    return {
        "published": published[1] if published else None,
        "commit": published[0] if published else None,
        "code": provenance["git"]["commit"][:7] + (" (dirty)" if provenance["git"]["dirty"] else ""),
        "plan_hash": plan_hash(record),
        "changed_next": plan_changes(record, new_record),
        "result": result_line(report_dir),
    }


def read_log(report_dir: Path) -> list[dict[str, Any]]:
    """The design log of a report (earlier published iterations, oldest first); empty when there is none."""
    path = report_dir / LOG_FILE
    return (yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def log_publication(report_dir: Path, new_record: dict[str, Any]) -> None:
    """Before publishing `new_record` over an earlier report: append that report to the design log."""
    if not (report_dir / "design.yaml").is_file():
        return
    entry = publication_entry(report_dir, new_record)
    log = read_log(report_dir)
    if entry["commit"] is None or any(e.get("commit") == entry["commit"] for e in log):
        return  # the earlier report was never committed (a re-publish in the same working tree), or is logged
    atomic_write_text(report_dir / LOG_FILE, yaml.safe_dump([*log, entry], sort_keys=False, allow_unicode=True))


def preregistration_markdown(report_dir: Path, record: dict[str, Any]) -> str:
    """The report's plan hash, when it was frozen, its deviations and the earlier published iterations."""
    digest, lines = plan_hash(record), []
    frozen_path = report_dir / PLAN_FILE
    if frozen_path.is_file():
        frozen = json.loads(frozen_path.read_text())
        when = f"frozen {frozen['frozen_at']} at commit `{str(frozen['commit'])[:7]}`"
        reused = frozen.get("finished_runs", 0)
        when += (f", after {reused} run(s) of an earlier iteration had finished, which this one reuses where it "
                 "did not rerun them (runs.csv: each run's config hash)" if reused
                 else ", before the design's first run")
        if frozen["plan_hash"] != digest:
            when += f"; **the plan changed after it was frozen** (frozen hash `{frozen['plan_hash']}`)"
    else:
        when = "not frozen: these runs were made before `make design` froze plans"
    lines.append(f"Plan hash `{digest}` (arms, seeds, base overrides, metrics, primary test, α and deviations; "
                 f"{when}).")
    deviations = record.get("deviations") or []
    if deviations:
        lines += ["", "Deviations from what validation chose, with their reasons:", "",
                  *[f"- {d}" for d in deviations]]
    log = read_log(report_dir)
    if log:
        lines += ["", f"Iteration {len(log) + 1} of this design. Earlier published iterations, whose test results "
                  "were seen before this plan was fixed (so this is a re-run after seeing test results):", "",
                  "| published | commit | code | plan hash | changed in the next iteration | result |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {e['published']} | `{e['commit']}` | {e['code']} | `{e['plan_hash'] or 'n/a'}` | "
                  f"{e['changed_next']} | {e['result']} |" for e in log]
    else:
        lines += ["", "Iteration 1 of this design: no earlier iteration was published."]
    return "\n".join(lines)
