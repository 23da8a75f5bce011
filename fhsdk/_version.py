"""The package version, in one place (the ONNX metadata records it too)."""

__version__ = "0.1.0"
