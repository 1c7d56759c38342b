"""Where a number came from: the command, the git commit, package versions and the machine (no torch import)."""

import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from src.rundir import atomic_write_text

PACKAGES = ("torch", "lightning", "transformers", "datasets", "torchmetrics", "scikit-learn", "scipy",
            "statsmodels", "numpy", "deepsig", "peft", "omegaconf")
ISA_FLAGS = {"avx2": {"avx2"}, "avx512": {"avx512f"}, "vnni": {"avx512_vnni", "avx_vnni"}, "amx": {"amx_tile"}}
REPO_ROOT = Path(__file__).resolve().parents[1]


def _cpuinfo(field: str) -> str:
    """The first value of `field` in /proc/cpuinfo ('' off Linux)."""
    path = Path("/proc/cpuinfo")
    lines = path.read_text().splitlines() if path.is_file() else []
    return next((value.strip() for key, _, value in (line.partition(":") for line in lines)
                 if key.strip() == field), "")


def cpu_info() -> dict[str, Any]:
    """CPU model, core count and the ISA extensions that decide CPU speed (int8 needs VNNI/AMX to shine)."""
    flags = set(_cpuinfo("flags").split())
    return {"cpu": _cpuinfo("model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), **{name: bool(flags & wanted) for name, wanted in ISA_FLAGS.items()}}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages results depend on."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


DIFF_FILE = "uncommitted.diff"  # beside provenance.json when the work tree had uncommitted changes


def _git(*args: str) -> str | None:
    """The output of a git command in the repository (None outside a git checkout)."""
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def git_state() -> dict[str, Any]:
    """The commit and whether the work tree had uncommitted changes (None outside a git checkout)."""
    status, commit = _git("status", "--porcelain", "--untracked-files=no"), _git("rev-parse", "HEAD")
    return {"commit": commit and commit.strip(), "dirty": None if status is None else bool(status.strip())}


def provenance(command: str) -> dict[str, Any]:
    """Everything a reader needs to rerun a result: command, code version, packages, machine, python."""
    return {"command": command, "git": git_state(), "python": platform.python_version(),
            "packages": package_versions(), "machine": cpu_info()}


def write_provenance(directory: Path, command: str) -> Path:
    """<directory>/provenance.json for `command`; with uncommitted changes, their diff against the commit beside it
    (uncommitted.diff), so a result made from a dirty tree still names its exact code."""
    directory.mkdir(parents=True, exist_ok=True)
    record = provenance(command)
    (directory / DIFF_FILE).unlink(missing_ok=True)
    if record["git"]["dirty"]:
        atomic_write_text(directory / DIFF_FILE, _git("diff", "HEAD") or "")
    return atomic_write_text(directory / "provenance.json", json.dumps(record, indent=2) + "\n")
