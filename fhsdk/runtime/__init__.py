"""Deployment runtimes: one Backend interface over PyTorch, ONNX Runtime and TensorRT.

Runtimes know nothing of faces: a backend takes named input arrays and returns named outputs.
TensorRT and ONNX Runtime are imported only when their backend is created.
"""

from fhsdk.runtime.base import Backend, ModelIO, TensorSpec, to_numpy
from fhsdk.runtime.export import export_onnx, export_preset, read_metadata
from fhsdk.runtime.factory import KINDS, create_backend
from fhsdk.runtime.presets import ModelPreset, get_preset, list_presets
from fhsdk.runtime.verify import VerifyResult, compare_outputs, verify_backend

__all__ = [
    "KINDS",
    "Backend",
    "ModelIO",
    "ModelPreset",
    "TensorSpec",
    "VerifyResult",
    "compare_outputs",
    "create_backend",
    "export_onnx",
    "export_preset",
    "get_preset",
    "list_presets",
    "read_metadata",
    "to_numpy",
    "verify_backend",
]
