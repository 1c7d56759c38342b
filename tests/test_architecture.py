"""The layout holds: no import cycle among src modules, no library import of an entry point (src.cli.*), imports
down the README's layers only, model anatomy importing nothing of the project, no two modules with the same file
name. Read with ast, nothing imported."""

import ast
from collections import Counter
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from src.config import REPO_ROOT

SRC = REPO_ROOT / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported(path: Path) -> set[str]:
    """The src modules `path` imports anywhere (function-level imports too; `if TYPE_CHECKING:` blocks left out)."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                 for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from src.cli import train` imports the module src.cli.train; `from src.x import f` the module src.x
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                         for alias in node.names)
    return {name for name in found if name in MODULES}


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    """Every src module -> the src modules it imports."""
    return {name: imported(path) for name, path in MODULES.items()}


def test_the_graph_sees_the_imports_it_guards() -> None:
    graph = import_graph()
    assert "src.training" in graph["src.cli.train"]  # `from src.training import train`
    assert "src.rundir" in graph["src.training"]  # `from src import rundir`
    assert "src.modules.text_classifier" in graph["src.training"]  # imports inside functions count too


def test_no_import_cycle_among_src_modules() -> None:
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_only_entry_points_import_entry_points() -> None:
    leaks = sorted((source, target) for source, targets in import_graph().items() for target in targets
                   if target.startswith("src.cli") and not source.startswith("src.cli"))
    assert leaks == [], f"library modules importing src.cli: {leaks}"


def layer(module: str) -> int:
    """README's layering: 3 the command line, 2 runs (built by src.builders), designs and serving, 1 model, data and
    compression parts, 0 the base (config, schemas, validation, rundir, errors, ... and modules/anatomy.py)."""
    package = module.split(".")[1]
    if package == "cli":
        return 3
    if package in ("builders", "training", "pretraining", "experiments", "serving"):
        return 2
    return int(package in ("modules", "datamodules", "callbacks", "compression") and module != "src.modules.anatomy")


def test_imports_point_down_the_layers() -> None:
    upward = sorted((source, target) for source, targets in import_graph().items() for target in targets
                    if layer(target) > layer(source))
    assert upward == [], f"imports against the layering: {upward}"


def test_model_anatomy_imports_nothing_of_the_project() -> None:
    assert imported(MODULES["src.modules.anatomy"]) == set()


def test_no_two_modules_share_a_file_name() -> None:
    names = Counter(p.name for p in MODULES.values() if p.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []
