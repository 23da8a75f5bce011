"""A small model registry in the manner of timm: one architecture per file, one `create_model`.

Each architecture file decorates its constructor with `@register_model("name")`. Callers build a
model by name with `create_model(name, **kwargs)`; `list_models()` tells what exists. Importing
this module imports its package first, and `fhsdk/models/__init__.py` imports every architecture
file, so the registry is full before anyone can call it.
"""

from __future__ import annotations

from collections.abc import Callable

from fhsdk.errors import ConfigError

_REGISTRY: dict[str, Callable] = {}


def register_model(name: str) -> Callable[[Callable], Callable]:
    def decorate(constructor: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name] is not constructor:
            raise ValueError(f"model name '{name}' is registered twice")
        _REGISTRY[name] = constructor
        return constructor

    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_constructor(name: str) -> Callable:
    """The registered constructor of `name` (for checking a config's keys against its arguments)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}': choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs):
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model '{name}': choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)
