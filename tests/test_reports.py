"""Committed reports: `make reports` re-renders every file identically; the README quotes only their figures."""

import re
import shutil
from pathlib import Path

import pytest

from src.config import REPO_ROOT
from src.experiments.archive import render, report_dirs

REPORTS = REPO_ROOT / "reports"
# A quoted result: 88.3 %, 1.52×, 0.869 (a count such as 25,000 or a version such as 2.13.0 is not one).
FIGURE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:%|×)|(?<![\w.])\d+\.\d+(?![\d.])")
LINK = re.compile(r"\]\(((?:\.\./)?reports/[^)#]+)")


@pytest.mark.slow  # re-renders every committed report: ~90 s (make test < 8 min; in make test-all)
def test_make_reports_rerenders_every_committed_file_identically(tmp_path: Path) -> None:
    copy = tmp_path / "reports"
    shutil.copytree(REPORTS, copy, ignore=shutil.ignore_patterns("wandb"))  # local W&B run folders, git-ignored
    rendered = report_dirs(copy)
    assert rendered, "no committed report found"
    for report_dir in rendered:
        render(report_dir)
    committed = _files(REPORTS)
    assert _files(copy) == committed
    changed = [str(p) for p in committed if (REPORTS / p).read_bytes() != (copy / p).read_bytes()]
    assert changed == [], f"re-rendering changed {changed}: run `make reports` and commit the result"


def _files(root: Path) -> list[Path]:
    """Every file under `root` (relative), local W&B folders left out."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "wandb" not in p.parts)


def _readme_figures() -> list[tuple[int, str, list[str], list[str]]]:
    """(line number, line, figures on it, reports files it links) for every README line with a figure."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    return [(n, line, FIGURE.findall(line), LINK.findall(line)) for n, line in enumerate(lines, 1)
            if FIGURE.search(line)]


@pytest.mark.parametrize("number, line, figures, links", _readme_figures())
def test_every_readme_figure_is_in_the_report_it_links(number: int, line: str, figures: list[str],
                                                       links: list[str]) -> None:
    assert links, f"README line {number} quotes {figures} without linking the report under reports/ it is from"
    text = "\n".join((REPO_ROOT / link.removeprefix("../")).read_text() for link in links)
    for figure in figures:
        value = re.sub(r"\s?(%|×)$", "", figure)
        assert value in text, f"README line {number}: {figure} is not in {links}"
