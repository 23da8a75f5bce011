"""Low-resolution degradations of aligned HR crops: how the LR faces of evaluation and training are made.

`downsample` is the plain bicubic model (antialiased, like MATLAB's imresize, which the face
hallucination papers use). `surveillance` adds what cameras add: optical blur, sensor noise and
JPEG compression. Both work on batches of uint8 N x H x W x 3 crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fhsdk.errors import InvalidInputError
from fhsdk.images import MAX_CROP_SIDE, as_crop_batch


def resize_bicubic(crops: np.ndarray, size: int) -> np.ndarray:
    """Resize a batch of uint8 crops to size x size, bicubic, antialiased when shrinking."""
    crops = as_crop_batch(crops)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= MAX_CROP_SIDE:
        raise InvalidInputError(f"the output side must be an integer from 1 to {MAX_CROP_SIDE}, got {size!r}")
    if len(crops) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    if crops.shape[1] == size and crops.shape[2] == size:
        return crops.copy()
    batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    shrinking = size < crops.shape[1]
    out = F.interpolate(batch, size=(size, size), mode="bicubic", align_corners=False, antialias=shrinking)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


downsample = resize_bicubic


@dataclass(frozen=True)
class SurveillanceDegradation:
    """Blur, then downsample, then noise, then JPEG: a camera's chain, with ranges drawn per face."""

    blur_sigma: tuple[float, float] = (0.0, 1.5)  # in HR pixels, before downsampling
    noise_std: tuple[float, float] = (0.0, 8.0)  # in 0-255 units, at LR
    jpeg_quality: tuple[int, int] = (40, 95)

    def __call__(self, hr: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        hr = as_crop_batch(hr)
        blurred = np.empty_like(hr)
        for i, crop in enumerate(hr):  # per-face parameters: cv2 has no batched blur
            sigma = rng.uniform(*self.blur_sigma)
            blurred[i] = cv2.GaussianBlur(crop, (0, 0), sigma) if sigma > 0.05 else crop
        lr = resize_bicubic(blurred, size).astype(np.float32)
        lr += rng.normal(size=lr.shape).astype(np.float32) * rng.uniform(*self.noise_std, size=(len(lr), 1, 1, 1))
        lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
        for i, crop in enumerate(lr):
            quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
            lr[i] = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        return lr


def degrade(hr: np.ndarray, size: int, mode: str = "bicubic", seed: int = 0) -> np.ndarray:
    """LR crops of side `size` from HR crops: mode 'bicubic' or 'surveillance' (seeded, reproducible)."""
    if mode == "bicubic":
        return resize_bicubic(hr, size)
    if mode == "surveillance":
        return SurveillanceDegradation()(hr, size, np.random.default_rng(seed))
    raise InvalidInputError(f"unknown degradation '{mode}': use 'bicubic' or 'surveillance'")
