"""Network architectures, one per file, registered by name (see registry.py)."""

from fhsdk.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
