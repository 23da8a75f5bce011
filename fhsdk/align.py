"""Face alignment: a 5-point similarity transform onto one canonical face region.

Every stage works on the same square region of the face. `align(image, landmarks, size=s)` returns it
at side s: an LR crop of side 16 and the HR crop of side 128 cover exactly the same part of the face,
and at side 150 it is the chip dlib's ResNet recogniser was trained on (dlib's `get_face_chip` with
padding 0.25). `CANONICAL_TEMPLATE` gives the five landmarks' place in the region as fractions of its
side, in MTCNN's landmark convention, so a caller can map our crops to another recogniser's alignment.
It was measured with `tools/derive_align_template.py --landmarks mtcnn` on 1,321 CelebA faces
(median position of fhsdk's MTCNN landmarks inside dlib's chip).
"""

from __future__ import annotations

import numpy as np

from fhsdk.errors import InvalidInputError
from fhsdk.images import MAX_CROP_SIDE, as_bgr_image
from fhsdk.kernels import resize_normalize_affine
from fhsdk.models import dlib_resnet

# Eye on the image's left, eye on the image's right, nose tip, mouth corners (left, right); (x, y).
CANONICAL_TEMPLATE = np.array(
    [
        [0.3186, 0.3027],
        [0.6773, 0.3021],
        [0.4977, 0.5278],
        [0.3378, 0.6792],
        [0.6585, 0.6793],
    ],
    dtype=np.float64,
)
HR_SIDE = 128  # the hallucinator's output side
RECOGNIZER_SIDE = dlib_resnet.INPUT_SIZE  # dlib ResNet's chip: the canonical region at this side
LR_SIDES = (8, 12, 16, 24, 32)
ALIGN_VERSION = 2  # bump when the sampling changes: caches of aligned crops' embeddings key on it

_MAX_SUPERSAMPLE = 4


def interocular_px(size: float, template: np.ndarray = CANONICAL_TEMPLATE) -> float:
    """Distance between the eye centres, in pixels, in a crop of the given side."""
    return float(np.linalg.norm(template[1] - template[0]) * size)


def _as_landmarks(landmarks) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim == 2 and points.shape == (5, 2):
        points = points[None]
    if points.ndim != 3 or points.shape[1:] != (5, 2):
        raise InvalidInputError(
            f"expected landmarks of shape N x 5 x 2 (x, y per point), got {points.shape}: "
            "use the `landmarks` of a detector's output"
        )
    if not np.isfinite(points).all():
        raise InvalidInputError("landmarks contain NaN or infinite values")
    return points


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms (rotation, uniform scale, translation), vectorised.

    src: N x P x 2 points, dst: P x 2 or N x P x 2 targets. Returns N x 2 x 3 matrices M with
    dst ~= M[:, :2] @ src + M[:, 2] (the closed-form 2-D Umeyama solution without reflection).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.broadcast_to(np.asarray(dst, dtype=np.float64), src.shape)
    src_mean, dst_mean = src.mean(axis=1, keepdims=True), dst.mean(axis=1, keepdims=True)
    s, d = src - src_mean, dst - dst_mean
    norm = np.maximum((s**2).sum(axis=(1, 2)), 1e-12)
    a = (s * d).sum(axis=(1, 2)) / norm
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(axis=1) / norm
    linear = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], axis=1)  # N x 2 x 2
    offset = dst_mean[:, 0] - np.einsum("nij,nj->ni", linear, src_mean[:, 0])
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def crop_transforms(landmarks, size: int, template: np.ndarray = CANONICAL_TEMPLATE) -> np.ndarray:
    """N x 2 x 3 matrices taking image pixel coordinates to crop pixel coordinates (cv2.warpAffine's)."""
    points = _as_landmarks(landmarks)
    spread = np.abs(points - points.mean(axis=1, keepdims=True)).max(axis=(1, 2), initial=0.0)
    if (spread < 1e-6).any():  # the similarity would have scale 0: the face has no size to crop
        raise InvalidInputError(
            "landmarks of a face all lie on one point: pass the 5 distinct points a detector returns"
        )
    # Pixel centres: a template fraction f lands at f * size - 0.5 in pixel-index coordinates.
    return estimate_similarity(points, template * size - 0.5)


def region_side_px(landmarks, template: np.ndarray = CANONICAL_TEMPLATE) -> np.ndarray:
    """Side, in image pixels, of each face's canonical region (N landmark sets -> N sides)."""
    return 1.0 / np.hypot(*crop_transforms(landmarks, 1, template)[:, :, 0].T)


def align(image, landmarks, size: int = HR_SIDE, template: np.ndarray = CANONICAL_TEMPLATE) -> np.ndarray:
    """Crop the canonical face region of every face: N x size x size x 3 uint8, same channel order as image.

    Bilinear sampling of all faces in one batched call; when a face is much larger in the frame than
    the crop, it is sampled on a finer grid and box-filtered down, so small crops do not alias.
    Regions that leave the frame are filled with black.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= MAX_CROP_SIDE:
        raise InvalidInputError(f"crop size must be an integer from 1 to {MAX_CROP_SIDE}, got {size!r}")
    image = as_bgr_image(image)
    points = _as_landmarks(landmarks)
    if len(points) == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    to_crop = crop_transforms(points, size, template)
    # Source pixels per crop pixel = 1 / scale of the similarity.
    scale = np.hypot(to_crop[:, 0, 0], to_crop[:, 1, 0])
    supersample = int(np.clip(np.ceil(1.0 / scale.min()), 1, _MAX_SUPERSAMPLE))
    return _warp(image, to_crop, size, supersample)


def _warp(image: np.ndarray, to_crop: np.ndarray, size: int, supersample: int) -> np.ndarray:
    """All faces in one call of the fused kernel (bilinear, black outside the frame), box-filtered
    from a `supersample` times finer grid."""
    # Crop pixel c sits at fine pixel (c + 0.5) * s - 0.5.
    to_fine = to_crop * supersample
    to_fine[:, :, 2] += (supersample - 1) / 2
    fine = resize_normalize_affine(
        image, to_fine.astype(np.float32), size * supersample, mean=0.0, scale=1.0, swap_rb=False
    )
    if supersample > 1:
        fine = fine.reshape(len(to_crop), 3, size, supersample, size, supersample).mean(axis=(3, 5))
    return np.clip(np.rint(fine), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()
