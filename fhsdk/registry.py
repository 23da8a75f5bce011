"""Things found by name: the architectures (fhsdk.models), the detectors (fhsdk.detect) and the
deployment presets (fhsdk.runtime) each keep one `Registry`, filled where each thing is defined."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from fhsdk.errors import ConfigError, FHSDKError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, error: type[FHSDKError] = ConfigError, hint: str = ""):
        """`kind` names the things in messages ("model", "detector"); `error` is raised for an unknown
        name, with `hint` (how things get registered) after the list of known names."""
        self.kind, self.error, self.hint = kind, error, hint
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that adds the decorated class or function under `name`."""

        def decorate(item: T) -> T:
            return self.add(name, item)

        return decorate

    def add(self, name: str, item: T, replace: bool = False) -> T:
        if not replace and name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} name '{name}' is registered twice")
        self._items[name] = item
        return item

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise self.error(f"unknown {self.kind} '{name}': choose one of {', '.join(self.names())}{self.hint}")
        return self._items[name]
