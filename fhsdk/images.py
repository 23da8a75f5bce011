"""What fhsdk accepts as an image, in one place: frames (BGR uint8 H x W x 3, greys and BGRA converted)
and batches of face crops (uint8 N x H x W x 3), each refused with an error that says how to fix it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fhsdk.errors import InvalidInputError

MAX_FRAME_PIXELS = 8192 * 8192  # 67 MP (8K is 33 MP): larger frames need tens of GB in the detector's pyramid
MAX_CROP_SIDE = 4096  # crops of the face region: the recogniser's input is 150 px, the HR side 128

ImageInput = np.ndarray | Sequence[np.ndarray]


def as_bgr_image(image, where: str = "the image") -> np.ndarray:
    """A frame as a contiguous BGR uint8 H x W x 3 array (grey H x W or H x W x 1 and BGRA are converted)."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(
            f"{where} is a {type(image).__name__}, not a NumPy array: read files with cv2.imread or pass frames "
            "as H x W x 3 uint8 BGR arrays"
        )
    if image.dtype != np.uint8:
        raise InvalidInputError(
            f"{where} has dtype {image.dtype}, expected uint8: convert with np.clip(img, 0, 255).astype(np.uint8) "
            "(floats in [0, 1]: multiply by 255 first)"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(
            f"{where} has shape {image.shape}, expected H x W x 3 BGR (channels last) or H x W grey: pass one "
            "frame at a time (for a batch array, pass list(batch))"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidInputError(f"{where} is empty (shape {image.shape}): pass an image with pixels")
    if image.shape[0] * image.shape[1] > MAX_FRAME_PIXELS:
        raise InvalidInputError(
            f"{where} is {image.shape[1]} x {image.shape[0]} px, over the {MAX_FRAME_PIXELS / 1e6:.0f} MP fhsdk "
            "processes: downscale it (cv2.resize) or cut it into tiles first"
        )
    return np.ascontiguousarray(image)


def as_bgr_images(images: ImageInput) -> tuple[list[np.ndarray], bool]:
    """One frame or a list of them, each checked as `as_bgr_image` does; and whether one was given."""
    single = isinstance(images, np.ndarray)
    if single:
        return [as_bgr_image(images)], True
    if not isinstance(images, (list, tuple)):
        raise InvalidInputError(
            f"expected a BGR uint8 H x W x 3 NumPy array or a list of them, got "
            f"{type(images).__name__}; convert the image with np.asarray(...)"
        )
    return [as_bgr_image(image, f"image {i}") for i, image in enumerate(images)], False


def as_crop_batch(crops) -> np.ndarray:
    """Face crops as a contiguous uint8 N x H x W x 3 array (views with negative strides included)."""
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
        raise InvalidInputError(
            f"expected uint8 crops of shape N x H x W x 3, got "
            f"{getattr(crops, 'dtype', type(crops).__name__)} {getattr(crops, 'shape', '')}"
        )
    if crops.shape[1] < 1 or crops.shape[2] < 1:
        raise InvalidInputError(f"the crops are empty (shape {crops.shape}): crops need at least 1 x 1 pixels")
    if max(crops.shape[1:3]) > MAX_CROP_SIDE:
        raise InvalidInputError(
            f"crops of {crops.shape[2]} x {crops.shape[1]} px are over the {MAX_CROP_SIDE} px "
            "side fhsdk takes: pass crops of the face region (Pipeline.align)"
        )
    return np.ascontiguousarray(crops)
