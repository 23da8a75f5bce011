"""What every detector accepts: one BGR uint8 image or a list of them, checked with a clear error."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from fhsdk.errors import InvalidInputError

ImageInput = Union[np.ndarray, Sequence[np.ndarray]]


def validate_images(images: ImageInput) -> tuple[list[np.ndarray], bool]:
    """HxWx3 uint8 arrays (greys expanded to 3 channels) and whether a single image was given."""
    single = isinstance(images, np.ndarray)
    if single:
        images = [images]
    elif not isinstance(images, (list, tuple)):
        raise InvalidInputError(f"detect() takes a BGR uint8 HxWx3 numpy array or a list of them, got "
                                f"{type(images).__name__}; convert the image with np.asarray(...)")
    checked = []
    for i, image in enumerate(images):
        where = "the image" if single else f"image {i}"
        if not isinstance(image, np.ndarray):
            raise InvalidInputError(f"{where} is a {type(image).__name__}, not a numpy array; pass BGR uint8 "
                                    f"HxWx3 arrays (e.g. from cv2.imread)")
        if image.dtype != np.uint8:
            raise InvalidInputError(f"{where} has dtype {image.dtype}, expected uint8 in 0..255; for floats in "
                                    f"[0, 1] use (image * 255).round().astype(np.uint8)")
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        elif image.ndim == 3 and image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        elif image.ndim != 3 or image.shape[2] != 3:
            hint = " (drop alpha with image[..., :3])" if image.ndim == 3 and image.shape[2] == 4 else ""
            raise InvalidInputError(f"{where} has shape {image.shape}, expected HxWx3 BGR or HxW grey{hint}; "
                                    f"for a batch array pass list(batch)")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise InvalidInputError(f"{where} is empty (shape {image.shape}); pass an image with pixels")
        checked.append(image)
    return checked, single
