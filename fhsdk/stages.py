"""The three model stages of the pipeline, one shape for all: built by name, device and backend, called
on a batch. `Pipeline` relies on these members and nothing else, so a new detector, hallucinator or
recogniser only has to provide them (and register its name).

    create_detector(name, device=, backend=, **options)      fhsdk.detect      (@register_detector)
    create_hallucinator(name, device=, backend=)              fhsdk.hallucinate ('bicubic', packaged, .pt)
    create_recognizer(name, device=, backend=, weights=)      fhsdk.embed       (@register_model; the network
                                                                                  says input_size, rgb_mean,
                                                                                  rgb_scale, embedding_dim)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from fhsdk.detect.types import Detections


@runtime_checkable
class Detector(Protocol):
    MIN_FACE_SIZE_FLOOR: float  # the smallest min_face_size it accepts
    min_face_size: float
    config: dict  # everything that changes its detections (caches key on it)

    def detect(self, images: np.ndarray | Sequence[np.ndarray]) -> list[Detections]: ...

    def use_backend(self, kind: str) -> Detector: ...


@runtime_checkable
class Hallucinator(Protocol):
    name: str
    native_side: int | None  # the side a gated face is warped to; None: each face at its own side
    hr_side: int

    def __call__(self, crops: np.ndarray) -> np.ndarray: ...  # BGR uint8 N x s x s x 3 -> N x hr x hr x 3

    def hallucinate_tensor(self, crops: np.ndarray) -> torch.Tensor: ...  # the same, RGB float on the device

    def use_backend(self, kind: str) -> Hallucinator: ...


@runtime_checkable
class Recognizer(Protocol):
    name: str
    input_side: int  # the chip side its network takes
    dim: int  # embedding size
    fingerprint: str  # a hash of its weights: galleries record it

    def __call__(self, crops: np.ndarray) -> np.ndarray: ...  # BGR uint8 crops at any side -> N x dim, unit norm

    def embed_tensor(self, rgb: torch.Tensor) -> np.ndarray: ...

    def preprocess_frame(self, frame: np.ndarray, to_chip: np.ndarray) -> torch.Tensor: ...

    def embed_preprocessed(self, batch: torch.Tensor) -> np.ndarray: ...
