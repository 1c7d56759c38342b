"""A name -> builder mapping for the families the project defines itself (augmentation operations, balancing
strategies, fusion methods, baselines). Classes from libraries (optimizers, schedules, callbacks, loggers,
profilers) are named in YAML by `_target_` instead (src/instantiate.py)."""

from collections.abc import Callable
from typing import Any

from src.errors import ConfigError


class Registry(dict[str, Callable[..., Any]]):
    """Builders registered by name; an unknown name fails with the registered choices."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: `@BALANCERS.register("undersample")` makes the function buildable from config."""

        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self[name] = fn
            return fn

        return add

    def get_builder(self, name: str) -> Callable[..., Any]:
        """The builder for `name`, or a ConfigError listing the registered names."""
        self.check(name)
        return self[name]

    def check(self, name: str, key: str | None = None) -> None:
        if name not in self:
            where = f" (config key '{key}')" if key else ""
            raise ConfigError(f"Unknown {self.kind} '{name}'{where}. Registered: {', '.join(sorted(self))}.")
