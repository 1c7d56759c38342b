"""Committed reports: `make reports` re-renders every file identically; README and docs quote their figures under
their labels; a report made from a dirty tree carries its diff."""

import re
import shutil
from pathlib import Path

import matplotlib
import pytest

from src import provenance
from src.config import REPO_ROOT
from src.reporting.archive import render, report_dirs
from src.reporting.summary import provenance_markdown

REPORTS = REPO_ROOT / "reports"
# PNG bytes follow matplotlib's rasteriser, so plots are compared byte for byte under the matplotlib that rendered
# the committed ones (`make install`); at another version (`make install-min`) only the text files are compared.
PLOTS_RENDERED_WITH = "3.11.2"
# A quoted result: 88.3 %, 1.52×, 0.869 (a count such as 25,000 or a version such as 2.13.0 is not one).
FIGURE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:%|×)|(?<![\w.])\d+\.\d+(?![\d.])")
LINK = re.compile(r"\]\(((?:\.\./)?reports/[^)#]+)")


@pytest.mark.slow  # re-renders every committed report: ~90 s (make test < 8 min; in make test-all)
def test_make_reports_rerenders_every_committed_file_identically(tmp_path: Path) -> None:
    _assert_rerenders_identically(report_dirs(REPORTS), tmp_path)


def test_make_reports_rerenders_the_default_recipe_report_identically(tmp_path: Path) -> None:
    # The cheapest design report (3 one-seed runs, ~13 s): every design table, test and plot, in make test.
    _assert_rerenders_identically([REPORTS / "default_recipe"], tmp_path)


def _assert_rerenders_identically(report_dirs: list[Path], tmp_path: Path) -> None:
    """Copy the reports, re-render them there, and compare every committed file byte for byte."""
    assert report_dirs, "no committed report found"
    for report_dir in report_dirs:
        copy = tmp_path / report_dir.relative_to(REPORTS)
        shutil.copytree(report_dir, copy, ignore=shutil.ignore_patterns("wandb"))  # local W&B run folders
        render(copy)
    committed = [d.relative_to(REPORTS) / p for d in report_dirs for p in _files(d)]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == sorted(committed)
    compared = [p for p in committed if p.suffix != ".png" or matplotlib.__version__ == PLOTS_RENDERED_WITH]
    changed = [str(p) for p in compared if (REPORTS / p).read_bytes() != (tmp_path / p).read_bytes()]
    assert changed == [], f"re-rendering changed {changed}: run `make reports` and commit the result"


def _files(root: Path) -> list[Path]:
    """Every file under `root` (relative), local W&B folders left out."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "wandb" not in p.parts)


# A figure quoted in a doc: 88.3 %, 1.52×, -0.0012, 0.869 (not a count such as 25,000, a version such as 2.13.0,
# a shape such as 32 × 256, or an exponent such as 1e-4).
QUOTED = re.compile(r"(?<![\w.])[-+−]?\d+(?:\.\d+)?(?=\s?(?:%|×(?!\s?\d)))|(?<![\w.])[-+−]?\d+\.\d+(?![\d.])")
NUMBER = re.compile(r"[-+−]?\d+(?:\.\d+)?")
# What a doc calls a figure -> what the report's row, column or line calls it (lower case). A figure must be in a
# report cell whose row, column or section names one of the labels of the doc clause it is quoted in.
LABELS = {
    "validation accuracy": "val/acc", "test accuracy": "test/acc", "test macro-f1": "test/f1_macro",
    "validation": "val/", "training loss": "train/loss", "difference": "δ", "bootstrap 95 % ci": "bootstrap",
    "mcnemar p": "mcnemar", "oversampling": "oversample", "class-weighted loss": "class_weighted_loss",
    "inductor": "inductor_int8", "bf16": "bf16", "ptq": "ptq_int8", "qat": "qat_int8",
    "onnx runtime int8": "ort_int8", "onnx runtime fp32": "ort_fp32", "iqr": "iqr", "smaller": "smaller",
    "agreement": "agreement", "accurate": "acc", "target": "target", "ratio of medians": "ratio of medians",
    "paired ratios": "paired ratios", "wall time": "duration_s",
}


def _clauses(text: str) -> list[str]:
    """`text` split at table bars, semicolons and commas outside brackets: the span a label applies to."""
    clauses, depth, current = [], 0, ""
    for char in text:
        depth += (char in "([") - (char in ")]")
        if char in "|;" or (char == "," and depth == 0):
            clauses.append(current)
            current = ""
        else:
            current += char
    return [*clauses, current]


def _report_cells(path: Path) -> list[tuple[str, str]]:
    """(context, text) of every table cell (context: section, row name, column header) and prose line."""
    cells, section, header = [], "", []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            section = line
        elif line.startswith("|"):
            row = [c.strip() for c in line.strip("|").split("|")]
            if not header:
                header = row
            elif not set(line) <= set("|-: "):
                cells += [(f"{section} {row[0]} {column}", cell) for column, cell in zip(header, row, strict=False)]
        else:
            header = []
            cells.append((f"{section} {line}", line))
    return [(context.lower(), text) for context, text in cells]


def _same(quoted: str, found: str) -> bool:
    """The quoted figure is the found number at the quoted precision (unsigned: either sign)."""
    quoted, found = quoted.replace("−", "-"), found.replace("−", "-")
    decimals = len(quoted.partition(".")[2])
    value = round(float(found), decimals)
    return value == float(quoted) if quoted[0] in "+-" else abs(value) == float(quoted)


def _doc_units() -> list[tuple[str, str]]:
    """(where, text) of every table row, list item and paragraph of README.md and docs/*.md that quotes a figure."""
    units = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        lines, start = path.read_text().splitlines(), 0
        for n, line in enumerate([*lines, ""], 1):
            ends = not line.strip() or line.startswith(("|", "- ", "#", "```"))
            if ends and start:  # the paragraph that started at line `start` ends here
                units.append((f"{path.name}:{start}", " ".join(lines[start - 1:n - 1])))
                start = 0
            if line.startswith(("|", "- ")):
                units.append((f"{path.name}:{n}", line))
            elif line.strip() and not ends and not start:
                start = n
    return [(where, text) for where, text in units if QUOTED.search(text)]


def _quoted_figures() -> list[tuple[str, str, list[str]]]:
    """(where, text, linked reports) of README units with a figure and docs units that link a report."""
    units = [(where, text, LINK.findall(text)) for where, text in _doc_units()]
    return [(where, text, links) for where, text, links in units if links or where.startswith("README")]


def _misquoted(where: str, text: str, links: list[str]) -> list[str]:
    """Every figure of `text` that is not in a linked report under a label of its clause, or has no label."""
    cells = [cell for link in links for cell in _report_cells(REPO_ROOT / link.removeprefix("../"))]
    problems = []
    for clause in _clauses(LINK.sub("](", text)):
        labels = [report for doc, report in LABELS.items() if doc in clause.lower()]
        for doc in (d for d in LABELS if d in clause.lower()):
            clause = re.sub(re.escape(doc), " ", clause, flags=re.IGNORECASE)
        for figure in QUOTED.findall(clause):
            if not labels and not where.startswith("README"):
                continue  # a setting beside a report link in docs (50 % pruning), not a result quoted from it
            if not any(_same(figure, number) for context, cell in cells if any(label in context for label in labels)
                       for number in NUMBER.findall(cell)):
                problems.append(f"{where}: {figure} is not under {labels or 'a label tests/test_reports.py knows'} "
                                f"in {links}")
    return problems


@pytest.mark.parametrize("where, text, links", _quoted_figures())
def test_every_quoted_figure_is_in_the_report_it_links_under_its_label(where: str, text: str,
                                                                       links: list[str]) -> None:
    assert links, f"{where} quotes {QUOTED.findall(text)} without linking the report under reports/ it is from"
    assert _misquoted(where, text, links) == []


def test_a_figure_under_another_label_or_without_one_is_caught() -> None:
    links = ["reports/imdb_full/summary.md"]
    assert _misquoted("README", "test accuracy 0.9081, McNemar p 0.192", links) == []
    # 0.0028 is in the report, as the difference, and 0.9081 as an accuracy: a bare substring check passed both.
    assert _misquoted("README", "test accuracy 0.9081, McNemar p 0.0028", links) == [
        f"README: 0.0028 is not under ['mcnemar'] in {links}"]
    assert _misquoted("README", "MiniLM 0.9081", links) == [
        f"README: 0.9081 is not under a label tests/test_reports.py knows in {links}"]
    # Rounded to the quoted precision is the same figure (0.9081 quoted as 0.908); a figure not in the report is not.
    assert _misquoted("README", "test accuracy 0.908 vs 0.9018", links) == [
        f"README: 0.9018 is not under ['test/acc'] in {links}"]


def test_a_dirty_tree_leaves_its_diff_beside_the_provenance_and_the_report_links_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"status": " M src/seeds.py\n", "rev-parse": "abc123\n", "diff": "diff --git a/src/seeds.py\n"}
    monkeypatch.setattr(provenance, "_git", lambda command, *args: answers[command])
    provenance.write_provenance(tmp_path, "make design DESIGN=toy")
    assert (tmp_path / provenance.DIFF_FILE).read_text() == "diff --git a/src/seeds.py\n"
    assert "- code: commit `abc123` with uncommitted changes ([uncommitted.diff](uncommitted.diff))" in (
        provenance_markdown(tmp_path))
    answers["status"] = ""  # committed since: a stale diff is removed
    provenance.write_provenance(tmp_path, "make design DESIGN=toy")
    assert not (tmp_path / provenance.DIFF_FILE).exists()
    assert "- code: commit `abc123`\n" in provenance_markdown(tmp_path)
