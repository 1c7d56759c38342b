"""Where a number came from: the command, the git commit, package versions and the machine (no torch import)."""

import json
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from src.hardware import cpu_info, cpu_isa
from src.rundir import atomic_write_text

PACKAGES = ("torch", "lightning", "transformers", "datasets", "torchmetrics", "scikit-learn", "scipy",
            "statsmodels", "numpy", "deepsig", "peft", "omegaconf")
REPO_ROOT = Path(__file__).resolve().parents[1]


def command_line() -> str:
    """This process's command as a user would type it (`python -m src.cli.train key=value ...`)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = ["python", "-m", spec.name] if spec is not None else ["python", sys.argv[0]]
    return shlex.join([*program, *sys.argv[1:]])


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


def last_commit(path: Path) -> tuple[str, str] | None:
    """(short hash, date) of the last commit that changed `path`; None if none did or outside a checkout."""
    line = (_git("log", "-1", "--format=%h %cs", "--", str(path)) or "").split()
    return (line[0], line[1]) if line else None


def provenance(command: str, **extra: Any) -> dict[str, Any]:
    """Everything a reader needs to rerun a result: command, code version, packages, machine (with its ISA),
    python, and `extra` facts of the result (a run's precision and why)."""
    info = cpu_info()
    return {"command": command, "git": git_state(), "python": platform.python_version(),
            "packages": package_versions(), "machine": {**info, "isa": cpu_isa(info)}, **extra}


def write_provenance(directory: Path, command: str, **extra: Any) -> Path:
    """<directory>/provenance.json for `command`; with uncommitted changes, their diff against the commit beside it
    (uncommitted.diff), so a result made from a dirty tree still names its exact code."""
    directory.mkdir(parents=True, exist_ok=True)
    record = provenance(command, **extra)
    (directory / DIFF_FILE).unlink(missing_ok=True)
    if record["git"]["dirty"]:
        atomic_write_text(directory / DIFF_FILE, _git("diff", "HEAD") or "")
    return atomic_write_text(directory / "provenance.json", json.dumps(record, indent=2) + "\n")
