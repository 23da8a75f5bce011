"""Network architectures, one per file, registered by name (see registry.py)."""

from fhsdk.models.registry import create_model, list_models, register_model
from fhsdk.models import dlib_resnet  # noqa: F401,E402  (registers "dlib_resnet_v1")

# Hallucination generators and discriminators (importing registers them).
from fhsdk.models import discriminators, dsnet, edsr, rrdb, sicnn, srgan  # noqa: E402,F401

__all__ = ["create_model", "list_models", "register_model"]
