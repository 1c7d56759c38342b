"""Signatures of `_target_` classes and functions read from their source with `ast`, without importing them.

Checking `callbacks.swa.swa_lr=1` against Lightning by importing it costs several seconds (torch, Lightning and
their dependencies); reading the class's source file costs milliseconds. `static_signature` finds the module's
file without running any package `__init__`, follows re-exports (`from .model_checkpoint import ModelCheckpoint`)
and single base classes to the `__init__` that takes the arguments. Wherever the source does not say for sure (a
decorated class or `__init__`, several bases, a metaclass, a star import, a lazy module, a name bound at run time)
it returns None and the caller imports the target as before. Hand-written because griffe, the static-analysis
library, needs a package's submodules loaded to resolve a dotted path (slower than the import it replaces).
"""

from __future__ import annotations

import ast
import functools
import inspect
from importlib.machinery import PathFinder
from pathlib import Path

MAX_HOPS = 8  # re-exports and base classes followed before giving up
# Decorators known to keep the signature of what they wrap (functools.wraps, arguments passed through unchanged):
# Lightning's Trainer.__init__ reads defaults from PL_TRAINER_* environment variables.
KEEPS_SIGNATURE = frozenset({"_defaults_from_env_vars"})


@functools.cache
def module_file(module: str) -> Path | None:
    """The source file of a dotted module, found on sys.path without importing its parent packages."""
    search, spec = None, None
    for part in module.split("."):
        if spec is not None and spec.submodule_search_locations is None:
            return None  # a plain module has no submodules
        spec = PathFinder.find_spec(part, search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    origin = spec.origin if spec else None
    return Path(origin) if origin and origin.endswith(".py") else None


@functools.cache
def module_tree(module: str) -> ast.Module | None:
    """The parsed source of a module (None when it has no .py source)."""
    path = module_file(module)
    return ast.parse(path.read_text(encoding="utf-8")) if path else None


def _bindings(module: str, tree: ast.Module) -> dict[str, ast.AST | tuple[str, str] | str | None]:
    """Top-level names of a module: class / function nodes, (module, name) of `from x import y`, a module path for
    `import x.y as z`, None for anything else (an assignment, or a name bound twice)."""
    bound: dict[str, ast.AST | tuple[str, str] | str | None] = {}

    def bind(name: str, value: ast.AST | tuple[str, str] | str | None) -> None:
        bound[name] = None if name in bound else value

    package = module if module_file(module).name == "__init__.py" else module.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            bind(node.name, node)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            for alias in node.names:
                bind(alias.asname or alias.name, (source, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bind(alias.asname or alias.name.partition(".")[0], alias.name if alias.asname else
                     alias.name.partition(".")[0])
        else:  # names bound inside if / try / for blocks or by assignment: known to exist, not what they are
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    bind(inner.id, None)
                elif isinstance(inner, ast.ClassDef | ast.FunctionDef):
                    bind(inner.name, None)
                elif isinstance(inner, ast.alias):
                    bind(inner.asname or inner.name.partition(".")[0], None)
    return bound


def missing(path: str) -> list[str] | None:
    """The public names of `path`'s module when its source surely lacks the last component (to suggest close
    matches), else None: the name is there, or the module is not plain source (a star import, a module-level
    `__getattr__`, a lazy module that replaces itself in sys.modules)."""
    module, _, name = path.rpartition(".")
    tree = module_tree(module) if module else None
    if tree is None or _is_dynamic(tree):
        return None
    bound = _bindings(module, tree)
    return None if name in bound else sorted(n for n in bound if not n.startswith("_"))


def _is_dynamic(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.alias) and node.name == "*":
            return True
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__" and node in tree.body:
            return True
        if isinstance(node, ast.Attribute) and node.attr == "modules" and getattr(node.value, "id", "") == "sys":
            return True
        if isinstance(node, ast.Name) and node.id in ("globals", "__getattr__"):
            return True
    return False


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of `from <node.module> import ...` inside `package`."""
    if not node.level:
        return node.module or ""
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def definition(path: str, hops: int = MAX_HOPS) -> tuple[str, ast.ClassDef | ast.FunctionDef] | None:
    """(module, class or function node) that the dotted `path` names, following re-exports; None when unsure."""
    module, _, name = path.rpartition(".")
    tree = module_tree(module) if module and hops > 0 else None
    if tree is None:
        return None
    value = _bindings(module, tree).get(name)
    if isinstance(value, ast.ClassDef | ast.FunctionDef):
        return module, value
    if isinstance(value, tuple):
        return definition(".".join(value), hops - 1)
    return None


def _resolve_base(module: str, base: ast.expr, hops: int) -> tuple[str, ast.ClassDef | ast.FunctionDef] | None:
    """The class a base-class expression (`Callback`, `pl.Callback`) names inside `module`."""
    if isinstance(base, ast.Name):
        return definition(f"{module}.{base.id}", hops)
    if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
        imported = _bindings(module, module_tree(module)).get(base.value.id)
        return definition(f"{imported}.{base.attr}", hops) if isinstance(imported, str) else None
    return None


def _signature_of(module: str, node: ast.ClassDef | ast.FunctionDef, hops: int) -> inspect.Signature | None:
    """The call signature of a function node, or of a class node's (maybe inherited) `__init__`."""
    if isinstance(node, ast.FunctionDef):
        return None if node.decorator_list else _parameters(node.args, bound=False)
    if node.decorator_list or node.keywords or hops <= 0:
        return None
    members = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)}
    if "__new__" in members or "__signature__" in members:
        return None
    init = members.get("__init__")
    if init is not None:
        return None if _changes_signature(init) else _parameters(init.args, bound=True)
    if not node.bases:
        return inspect.Signature([])  # object.__init__
    if len(node.bases) > 1:
        return None  # the method resolution order decides: leave it to inspect
    base = _resolve_base(module, node.bases[0], hops - 1)
    return _signature_of(*base, hops - 1) if base else None


def _changes_signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a decorator of `node` may change its signature (any but the KEEPS_SIGNATURE ones)."""
    return any(not (isinstance(d, ast.Name) and d.id in KEEPS_SIGNATURE) for d in node.decorator_list)


def _parameters(args: ast.arguments, bound: bool) -> inspect.Signature:
    """An inspect.Signature with the parameter names, kinds and which ones have defaults (values not needed)."""
    P, has = inspect.Parameter, ...
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    params = [P(a.arg, P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD,
                default=has if i >= first_default else P.empty) for i, a in enumerate(positional)]
    params = params[1:] if bound else params
    params += [P(args.vararg.arg, P.VAR_POSITIONAL)] if args.vararg else []
    params += [P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else has)
               for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    params += [P(args.kwarg.arg, P.VAR_KEYWORD)] if args.kwarg else []
    return inspect.Signature(params)


def static_signature(path: str) -> inspect.Signature | None:
    """The signature of the class (its `__init__`, less `self`) or function at dotted `path`; None when unsure."""
    found = definition(path)
    return _signature_of(*found, MAX_HOPS) if found else None


def class_constants(path: str) -> dict[str, object]:
    """`NAME = <literal>` assignments in the body of the class at `path` (e.g. an Enum's members); {} when unsure."""
    found = definition(path)
    if not found or not isinstance(found[1], ast.ClassDef):
        return {}
    return {stmt.targets[0].id: stmt.value.value for stmt in found[1].body
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
            and isinstance(stmt.value, ast.Constant)}


def module_dict(module: str, name: str) -> ast.Dict | None:
    """The dict literal assigned to `name` at the top level of `module` (None when there is none)."""
    tree = module_tree(module)
    for node in tree.body if tree else []:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)):
            return node.value
    return None
