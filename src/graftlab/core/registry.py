"""A tiny named registry: the single source of truth for backbones, strategies and predictors.

A module registers its class by decorating it; importing the package that holds the module is what
makes the name known (``graftlab.strategies`` imports each strategy file once).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind (classes or factories)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@STRATEGIES.register("lora")``."""

        def add(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            hint = difflib.get_close_matches(str(name), sorted(self._items), n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"Unknown {self.kind} {name!r}.{did_you_mean} Known {self.plural}: {known}."
            ) from None

    @property
    def plural(self) -> str:
        """The kind in the plural, for messages (``strategy`` -> ``strategies``, ``predictor kind`` -> ``predictor
        kinds``)."""
        if self.kind.endswith("y") and self.kind[-2:-1] not in tuple("aeiou"):
            return self.kind[:-1] + "ies"
        return self.kind + ("es" if self.kind.endswith(("s", "x", "sh", "ch")) else "s")

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
