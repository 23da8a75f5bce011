"""fhsdk: identity-preserving face hallucination for recognising tiny faces in video."""

from fhsdk.errors import (
    BackendUnavailableError,
    ConfigError,
    DataNotFoundError,
    FHSDKError,
    GalleryError,
    ImageReadError,
    InvalidInputError,
    NoFaceError,
    VideoSourceError,
    WeightsError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "DataNotFoundError",
    "FHSDKError",
    "GalleryError",
    "ImageReadError",
    "InvalidInputError",
    "NoFaceError",
    "VideoSourceError",
    "WeightsError",
    "__version__",
]
