"""The layout holds: no import cycle among src modules, no library import of an entry point (src.cli.*), imports
down the README's layers only, data parts and model parts independent of each other, design code free of reporting
code, model anatomy importing nothing of the project, no two modules with the same file name. Read with ast, nothing
imported."""

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


def _imports(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of `path`, function-level ones too; `if TYPE_CHECKING:` blocks left out."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                 for n in ast.walk(node)}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in type_only]


def imported(path: Path) -> set[str]:
    """The src modules `path` imports anywhere (function-level imports too; `if TYPE_CHECKING:` blocks left out)."""
    found = set()
    for node in _imports(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif node.module and node.level == 0:
            # `from src.cli import train` imports the module src.cli.train; `from src.x import f` the module src.x
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                         for alias in node.names)
    return {name for name in found if name in MODULES}


def imported_libraries(path: Path) -> set[str]:
    """Every dotted name `path` imports from outside the project: `from scipy import stats` gives scipy and
    scipy.stats."""
    found = set()
    for node in _imports(path):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif node.module and node.level == 0:
            found.update({node.module, *(f"{node.module}.{alias.name}" for alias in node.names)})
    return {name for name in found if name.split(".")[0] != "src"}


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    """Every src module -> the src modules it imports."""
    return {name: imported(path) for name, path in MODULES.items()}


def test_the_graph_sees_the_imports_it_guards() -> None:
    graph = import_graph()
    assert "src.training" in graph["src.cli.train"]  # `from src.training import train`
    assert "src.rundir" in graph["src.training"]  # `from src import rundir`
    assert "src.callbacks.checkpoint" in graph["src.training"]  # imports inside functions count too


def test_no_import_cycle_among_src_modules() -> None:
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_only_entry_points_import_entry_points() -> None:
    leaks = sorted((source, target) for source, targets in import_graph().items() for target in targets
                   if target.startswith("src.cli") and not source.startswith("src.cli"))
    assert leaks == [], f"library modules importing src.cli: {leaks}"


LAYERS = {  # package (or top-level module) -> layer; everything else in src/ is the base, layer 0
    "datamodules": 1, "modules": 1, "compression": 1,
    "callbacks": 2, "loggers": 2, "builders": 2, "run": 2,
    "reporting": 3,
    "training": 4, "pretraining": 4, "serving": 4,
    "designs": 5,
    "cli": 6,
}


def layer(module: str) -> int:
    """README's layering, bottom up; a module imports only its own layer and those below.

    0 the base: config, schemas, validation, instantiate, signatures, rundir, errors, seeds, registry, hub,
      provenance, hardware, and modules/anatomy.py (what a model's parts are called);
    1 the parts: data (datamodules) and model (modules, compression: the model's own surgery, quantization and
      export formats), independent of each other (test_data_and_model_parts_are_independent);
    2 what a Trainer is given (callbacks, loggers), src/builders.py (config -> tokenizer, data module, model,
      Trainer) and src/run.py (a trained run opened with its config, labels, tokenizer, preprocessing and model):
      the two join a data part to a model part;
    3 reporting: statistics, results of finished runs, summaries, plots, the data and compression reports and the
      committed reports/ (it measures parts and reads run directories; it never trains);
    4 runs: training, pretraining and serving (the model card quotes reporting's bootstrap intervals);
    5 designs: many runs, baselines, fusions, searches and launchers (they use reporting's statistics to score
      and select, never its renderers: test_designs_hold_no_reporting_code);
    6 the command line, which joins a design's run to its report.
    """
    if module == "src.modules.anatomy":
        return 0
    return LAYERS.get(module.split(".")[1], 0)


def test_imports_point_down_the_layers() -> None:
    upward = sorted((source, target) for source, targets in import_graph().items() for target in targets
                    if layer(target) > layer(source))
    assert upward == [], f"imports against the layering: {upward}"


def test_data_and_model_parts_are_independent() -> None:
    """Data parts and model parts share layer 1 but not each other: what both need lives in the base."""
    sides = {"datamodules": "data", "modules": "model", "compression": "model"}

    def side(module: str) -> str | None:
        return sides.get(module.split(".")[1]) if module != "src.modules.anatomy" else None

    crossing = sorted((source, target) for source, targets in import_graph().items() for target in targets
                      if side(source) and side(target) and side(source) != side(target))
    assert crossing == [], f"data and model parts importing each other: {crossing}"


REPORTING_LIBRARIES = ("matplotlib", "pandas", "scipy.stats", "statsmodels", "deepsig")
DESIGN_USES_OF_REPORTING = {"src.reporting.stats", "src.reporting.results", "src.reporting.plan"}  # scoring,
# selection, run reuse, the plan hash frozen before a design runs


def test_designs_hold_no_reporting_code() -> None:
    """Statistics, tables, plots and reports live in src/reporting/: no design module imports a plotting, table or
    statistical-testing library, and designs use reporting's statistics and run results only, never a renderer."""
    designs = {name: path for name, path in MODULES.items() if name.startswith("src.designs")}
    libraries = sorted((name, library) for name, path in designs.items() for library in imported_libraries(path)
                       if library.startswith(REPORTING_LIBRARIES))
    assert libraries == [], f"design modules doing reporting's work: {libraries}"
    renderers = sorted((name, target) for name, path in designs.items() for target in imported(path)
                       if target.startswith("src.reporting") and target not in DESIGN_USES_OF_REPORTING)
    assert renderers == [], f"design modules importing report code: {renderers}"


def test_model_anatomy_imports_nothing_of_the_project() -> None:
    assert imported(MODULES["src.modules.anatomy"]) == set()


def test_no_two_modules_share_a_file_name() -> None:
    names = Counter(p.name for p in MODULES.values() if p.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []
