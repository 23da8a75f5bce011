"""What a face detector returns for one image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Landmark order: as seen in the image, not from the person's point of view.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Detections:
    """Faces found in one image, best score first.

    boxes: N x 4 float32 (x1, y1, x2, y2) in pixels, pixel-edge convention (width = x2 - x1; may
        reach past the frame for faces cut by its border).
    scores: N float32 face probabilities.
    landmarks: N x 5 x 2 float32 (x, y) in pixel-centre coordinates (pixel (0, 0) is centred at
        (0, 0), as in OpenCV and dlib), ordered as LANDMARK_NAMES: the eye on the image's left, the
        eye on the image's right, the nose tip, the mouth corner on the image's left, then on its right.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)
