"""fhsdk: identity-preserving face hallucination for recognising tiny faces in video."""

from fhsdk._version import __version__
from fhsdk.errors import (
    BackendUnavailableError,
    ConfigError,
    DataNotFoundError,
    FHSDKError,
    GalleryError,
    ImageReadError,
    InvalidInputError,
    NoFaceError,
    OutputError,
    VideoSourceError,
    WeightsError,
)


def __getattr__(name):
    # Heavy modules (torch, models) load on first use, so `import fhsdk` stays fast.
    if name == "Pipeline":
        from fhsdk.pipeline import Pipeline

        return Pipeline
    if name == "Gallery":
        from fhsdk.gallery import Gallery

        return Gallery
    if name in ("Face", "FrameResult"):
        from fhsdk import results

        return getattr(results, name)
    if name == "RetryPolicy":
        from fhsdk.video import RetryPolicy

        return RetryPolicy
    if name == "align":
        import importlib

        return importlib.import_module("fhsdk.align")
    raise AttributeError(f"module 'fhsdk' has no attribute {name!r}")


__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "Face",
    "FrameResult",
    "Gallery",
    "Pipeline",
    "DataNotFoundError",
    "FHSDKError",
    "GalleryError",
    "ImageReadError",
    "InvalidInputError",
    "NoFaceError",
    "OutputError",
    "RetryPolicy",
    "VideoSourceError",
    "WeightsError",
    "__version__",
]
