"""Face detectors by name: one file per detector, one `@register_detector("name")` on its class.

A detector is a class whose constructor takes `min_face_size` (the smallest face to find, px) and
`device`, and whose instances have `detect(images) -> list[Detections]` (one BGR uint8 image or a list of
them), `use_backend(kind) -> self`, and the attributes `min_face_size` and `config` (a dict of everything
that changes its detections). The class attribute `MIN_FACE_SIZE_FLOOR` is the smallest `min_face_size`
it accepts. Adding one: write `fhsdk/detect/<name>.py`, decorate the class, and import the file in
`fhsdk/detect/__init__.py`; `Pipeline(detector="<name>")` and the CLI's `--detector` then offer it.
"""

from __future__ import annotations

from collections.abc import Callable

from fhsdk.errors import InvalidInputError
from fhsdk.registry import Registry

# Importing this module imported its package first, and fhsdk/detect/__init__.py imports every detector file.
DETECTORS: Registry[type] = Registry("detector", InvalidInputError)


def register_detector(name: str) -> Callable[[type], type]:
    return DETECTORS.register(name)


def list_detectors() -> list[str]:
    return DETECTORS.names()


def detector_class(name: str) -> type:
    return DETECTORS.get(name)


def create_detector(name: str, *, device: str = "cpu", backend: str = "torch", **options):
    """The detector stage (fhsdk.stages), built by name, device and backend; `options` go to its
    constructor (min_face_size=..., thresholds)."""
    return detector_class(name)(device=device, **options).use_backend(backend)
