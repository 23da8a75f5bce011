"""Network architectures, one per file, registered by name (see registry.py)."""

# Importing each architecture file registers it: dlib's recogniser, the generators, the discriminator.
from fhsdk.models import (  # noqa: F401
    discriminators,
    dlib_resnet,
    dsnet,
    edsr,
    presets,  # noqa: F401  (registers their deployment presets)
    rrdb,
    sicnn,
    srgan,
)
from fhsdk.models.registry import create_model, list_models, model_constructor, register_model

__all__ = ["create_model", "list_models", "model_constructor", "register_model"]
