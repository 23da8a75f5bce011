"""Face detection: MTCNN in PyTorch with the `mtcnn` PyPI package's weights."""

from fhsdk.detect.mtcnn import MTCNN, pyramid_scales
from fhsdk.detect.nms import batched_nms, box_overlap, nms
from fhsdk.detect.types import LANDMARK_NAMES, Detections

__all__ = ["LANDMARK_NAMES", "MTCNN", "Detections", "batched_nms", "box_overlap", "nms", "pyramid_scales"]
