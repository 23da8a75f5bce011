"""A small model registry in the manner of timm: one architecture per file, one `create_model`.

Each architecture file decorates its constructor with `@register_model("name")`. Callers build a
model by name with `create_model(name, **kwargs)`; `list_models()` tells what exists. Importing
this module imports its package first, and `fhsdk/models/__init__.py` imports every architecture
file, so the registry is full before anyone can call it.
"""

from __future__ import annotations

from collections.abc import Callable

from fhsdk.registry import Registry

MODELS: Registry[Callable] = Registry("model")


def register_model(name: str) -> Callable[[Callable], Callable]:
    return MODELS.register(name)


def list_models() -> list[str]:
    return MODELS.names()


def model_constructor(name: str) -> Callable:
    """The registered constructor of `name` (for checking a config's keys against its arguments)."""
    return MODELS.get(name)


def create_model(name: str, **kwargs):
    return MODELS.get(name)(**kwargs)
