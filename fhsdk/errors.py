"""Errors a user can cause. Every message says what was wrong and what to do about it."""


class FHSDKError(Exception):
    """Base class of every error fhsdk raises for bad input, missing files or missing components."""


class InvalidInputError(FHSDKError, ValueError):
    """An array, image or argument has the wrong type, shape, dtype or value."""


class ImageReadError(FHSDKError, OSError):
    """An image file is missing or cannot be decoded."""


class NoFaceError(FHSDKError):
    """An image that must contain a face has none the detector can find."""


class DataNotFoundError(FHSDKError, FileNotFoundError):
    """A data folder or protocol file (LFW, CelebA, video) is missing or incomplete."""


class WeightsError(FHSDKError):
    """A weight file is missing, corrupt, or does not match the model it is loaded into."""


class BackendUnavailableError(FHSDKError, RuntimeError):
    """A requested runtime backend or device (CUDA, ONNX Runtime, TensorRT) is not available here."""


class ConfigError(FHSDKError, ValueError):
    """A configuration file or value is invalid."""


class GalleryError(FHSDKError):
    """A gallery file is damaged, foreign, altered, encrypted with another key, or was made with another recogniser."""


class VideoSourceError(FHSDKError, OSError):
    """A video file, stream URL or camera cannot be opened or read."""


class OutputError(FHSDKError, OSError):
    """A file fhsdk writes (a gallery, an events log) cannot be written there: missing, read-only or too long a path."""

    @classmethod
    def writing(cls, what: str, path, error: OSError) -> "OutputError":
        """The error for an OSError met while writing `what` to `path`, saying why and what to do."""
        return cls(
            f"cannot write {what} to {path}: {error.strerror or error} (errno {error.errno}); choose a path "
            "in an existing, writable folder, with a name under 200 characters"
        )
