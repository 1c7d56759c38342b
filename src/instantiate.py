"""Objects built from `_target_` specs: a dotted class or function path plus its keyword arguments.

    model.optimizer: {_target_: torch.optim.AdamW, lr: 5.0e-5, betas: [0.9, 0.999]}

Hydra's `hydra.utils.instantiate` does this, but Hydra 1.3 pins omegaconf < 2.4 and this project needs omegaconf
2.4, so here is the subset the configs use: `_target_` and keyword arguments (no nested specs, no `_partial_`).
Every spec is checked against its target's signature (`check_spec`) before any work: read from the target's
source when src.signatures can (milliseconds, nothing imported), else by importing only the target's module; an
unknown class or argument is named with its close matches.
"""

import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from src.errors import ConfigError
from src.signatures import definition, missing, static_signature

TARGET = "_target_"
# Classes that hand their **kwargs on to another callable (defined where, -> which callable, the keywords the class
# itself passes it): their extra keywords are checked against that callable's signature.
KWARGS_GO_TO = {"lightning.pytorch.loggers.tensorboard.TensorBoardLogger":
                ("torch.utils.tensorboard.writer.SummaryWriter", ("log_dir",))}


def is_spec(value: Any) -> bool:
    """True for a mapping that names a `_target_`."""
    return isinstance(value, Mapping) and TARGET in value


def close_matches(word: str, candidates: Iterable[str]) -> str:
    """' Did you mean a, b?' for the candidates that look like `word`, else ''."""
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(matches)}?" if matches else ""


def _submodules(package: str) -> list[str]:
    """Names of the modules inside `package` (empty when it is not an importable package)."""
    try:
        return [m.name for m in pkgutil.iter_modules(importlib.import_module(package).__path__)]
    except (ImportError, AttributeError):
        return []


def _import(module_path: str, key: str) -> Any:
    """Import `module_path`; a missing module is named with its close matches, a missing dependency as such."""
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as err:
        missing = err.name or module_path
        if not module_path.startswith(missing):
            raise ConfigError(f"{key}: importing {module_path} needs the package '{missing}', which is not "
                              f"installed (pip install {missing}).") from None
        parent, _, name = missing.rpartition(".")
        raise ConfigError(f"{key}: no module '{missing}'.{close_matches(name, _submodules(parent))}") from None


def locate(path: Any, key: str) -> Any:
    """The object a dotted `_target_` path names, importing only its module."""
    module_path, _, name = str(path).rpartition(".")
    if not module_path:
        raise ConfigError(f"{key}={path!r} is not a dotted path to a class or function (e.g. torch.optim.AdamW).")
    module = _import(module_path, key)
    if not hasattr(module, name):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(f"{key}: {module_path} has no '{name}'.{close_matches(name, public)}")
    return getattr(module, name)


def check_arguments(target: Callable[..., Any], names: Iterable[str], key: str, given: Iterable[str] = ()) -> None:
    """Every keyword in `names` is a parameter of `target`, and its required ones are in `names` or `given` (those
    the builder passes)."""
    label = getattr(target, "__qualname__", str(target))
    check_signature(inspect.signature(target), label, names, key, given)


def check_signature(signature: inspect.Signature, label: str, names: Iterable[str], key: str,
                    given: Iterable[str] = ()) -> None:
    """`check_arguments` against a signature (`label`: the target's name in messages)."""
    params = signature.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    names = list(names)
    for name in names:
        if name not in params and not takes_any:
            raise ConfigError(f"Unknown argument '{key}.{name}' for {label}.{close_matches(name, params)} "
                              f"Arguments: {', '.join(params)}.")
    required = [p.name for p in params.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [p for p in required if p not in {*names, *given}]
    if missing:
        raise ConfigError(f"{key}: {label} needs {', '.join(f'{key}.{m}' for m in missing)}.")


def target_signature(path: str, key: str) -> inspect.Signature:
    """The signature of the class or function at dotted `path`: read from its source when it is plain enough
    (src.signatures: no import), else by importing it; a name its module surely lacks fails without importing."""
    signature = static_signature(path)
    if signature is not None:
        return signature
    public = missing(path)
    if public is not None:
        module, _, name = path.rpartition(".")
        raise ConfigError(f"{key}: {module} has no '{name}'.{close_matches(name, public)}")
    return inspect.signature(locate(path, key))


def _with_forwarded(signature: inspect.Signature, path: str, key: str) -> inspect.Signature:
    """The signature of `path` with its **kwargs replaced by the keywords of the callable it hands them to
    (KWARGS_GO_TO), so that a typo there is caught too; unchanged for any other target."""
    found = definition(path)
    forwarded = KWARGS_GO_TO.get(f"{found[0]}.{found[1].name}") if found else None
    if forwarded is None:
        return signature
    callee, passed = forwarded
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    extra = [p.replace(kind=p.KEYWORD_ONLY) for p in target_signature(callee, key).parameters.values()
             if p.name not in passed and p.name not in signature.parameters and p.kind is not p.VAR_KEYWORD]
    return signature.replace(parameters=[*own, *extra])


def check_spec(spec: Mapping[str, Any], key: str, given: Iterable[str] = ()) -> None:
    """Check the spec's target and arguments (`given`: those the builder passes) without building anything."""
    path = str(spec[TARGET])
    signature = _with_forwarded(target_signature(path, f"{key}.{TARGET}"), path, key)
    check_signature(signature, path.rpartition(".")[2], [name for name in spec if name != TARGET], key, given)


def instantiate(spec: Mapping[str, Any], key: str, *args: Any, **defaults: Any) -> Any:
    """Call the spec's target with `args`, its keyword arguments and those `defaults` that name a parameter of the
    target and that the spec does not set (so a run directory only reaches classes that take one)."""
    target = locate(spec[TARGET], f"{key}.{TARGET}")
    params = list(inspect.signature(target).parameters)
    taken = {name: value for name, value in defaults.items() if name in params}
    check_arguments(target, (name for name in spec if name != TARGET), key, given=[*params[: len(args)], *taken])
    kwargs = {**taken, **{name: value for name, value in spec.items() if name != TARGET}}
    try:
        return target(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{key} ({spec[TARGET]}): {err}") from None
