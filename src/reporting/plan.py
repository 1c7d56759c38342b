"""A design's plan, the part of its record that decides what it tests, and the plan's hash.

The plan is arms, seeds, base overrides, metrics, primary test, alpha and declared deviations, not the design's
prose or where it runs. `make design` freezes its hash in results/<design>/plan.json before the first run, so a
report can show that what it tests was fixed before any result was seen (src/reporting/design_log.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

PLAN_KEYS = ("base", "seeds", "control", "metric", "selection_metric", "primary_test", "alpha", "arms", "grid",
             "random", "tpe", "deviations")
PLAN_FILE = "plan.json"  # in results/<design>/, copied into the report


def _plain(value: Any) -> Any:
    """`value` with empty and null entries dropped, so records written before a key existed hash the same."""
    if isinstance(value, dict):
        kept = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def plan_of(record: dict[str, Any]) -> dict[str, Any]:
    """The plan of a design record (results/<design>/design.yaml): the keys that decide what is tested."""
    return _plain({key: record.get(key) for key in PLAN_KEYS})


def plan_hash(record: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the plan's canonical JSON."""
    canonical = json.dumps(plan_of(record), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def plan_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two plans, one clause per key (arms and base overrides by name)."""
    before, after = plan_of(old), plan_of(new)
    changes = []
    for key in PLAN_KEYS:
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        if key in ("arms", "base") and was and now:
            changes.append(f"{key}: {_member_changes(was, now)}")
        else:
            changes.append(f"{key}: {was} -> {now}")
    return "; ".join(changes) or "nothing in the plan (re-published)"


def _member_changes(was: dict | list, now: dict | list) -> str:
    """Added, removed and (for dicts) changed members of a plan key."""
    added, removed = [m for m in now if m not in was], [m for m in was if m not in now]
    changed = [m for m in now if isinstance(now, dict) and m in was and was[m] != now[m]]
    parts = [f"{label} {', '.join(map(str, items))}" for label, items in
             (("added", added), ("removed", removed), ("changed", changed)) if items]
    return ", ".join(parts)
