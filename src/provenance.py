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


def git_state() -> dict[str, Any]:
    """The commit and whether the work tree had uncommitted changes (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def provenance(command: str, **extra: Any) -> dict[str, Any]:
    """Everything a reader needs to rerun a result: command, code version, packages, machine (with its ISA),
    python, and `extra` facts of the result (a run's precision and why)."""
    info = cpu_info()
    return {"command": command, "git": git_state(), "python": platform.python_version(),
            "packages": package_versions(), "machine": {**info, "isa": cpu_isa(info)}, **extra}


def write_provenance(directory: Path, command: str, **extra: Any) -> Path:
    """<directory>/provenance.json for `command`."""
    directory.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(directory / "provenance.json",
                             json.dumps(provenance(command, **extra), indent=2) + "\n")
