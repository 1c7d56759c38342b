"""Where a number came from: the command, the git commit, package versions and the machine (no torch import)."""

import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

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


def provenance(command: str) -> dict[str, Any]:
    """Everything a reader needs to rerun a result: command, code version, packages, machine, python."""
    return {"command": command, "git": git_state(), "python": platform.python_version(),
            "packages": package_versions(), "machine": cpu_info()}


def write_provenance(directory: Path, command: str) -> Path:
    """<directory>/provenance.json for `command`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "provenance.json"
    path.write_text(json.dumps(provenance(command), indent=2) + "\n")
    return path
