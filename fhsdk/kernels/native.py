"""Whether the compiled extension fhsdk._C (csrc/) is here, and whether its CUDA kernels can run."""

from __future__ import annotations

try:
    from fhsdk import _C
except ImportError as exc:  # a source checkout that was never built
    _C = None
    _C_IMPORT_ERROR = str(exc)
else:
    _C_IMPORT_ERROR = ""


def native_available() -> bool:
    """True when the compiled extension fhsdk._C can be imported."""
    return _C is not None


def cuda_unavailable_reason() -> str:
    """Empty when the CUDA kernels can run here, else why not."""
    if _C is None:
        return f"fhsdk._C is not built ({_C_IMPORT_ERROR}); run `pip install -e .`"
    return _C.cuda_unavailable_reason()


def cuda_available() -> bool:
    """True when the CUDA kernels were compiled in and a GPU with a driver is present."""
    return cuda_unavailable_reason() == ""
