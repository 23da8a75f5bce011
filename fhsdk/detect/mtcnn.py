"""MTCNN face detector (Zhang et al., 2016): a P-Net -> R-Net -> O-Net cascade, batched over images.

Stage 1 slides P-Net (12x12 windows, stride 2) over an image pyramid; stage 2 rescores and refines
the candidates with R-Net on 24x24 crops; stage 3 does the same with O-Net on 48x48 crops and adds
five landmarks. Each stage ends with box regression and NMS; stages 1 and 2 square their boxes.
P-Net runs once per pyramid scale on all images of one size together; R-Net and O-Net run once
per stage on the crops of all images together.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fhsdk.detect.crop import crop_resize
from fhsdk.detect.mtcnn_nets import load_pretrained
from fhsdk.detect.nms import batched_nms
from fhsdk.detect.registry import register_detector
from fhsdk.detect.types import Detections
from fhsdk.errors import InvalidInputError
from fhsdk.images import ImageInput, as_bgr_images
from fhsdk.models.registry import register_model
from fhsdk.runtime.base import ModelIO, TensorSpec
from fhsdk.runtime.module_adapter import runner
from fhsdk.runtime.presets import F32, ModelPreset, image_spec, register_preset
from fhsdk.runtime.trt_plan import square_max

PNET_WINDOW = 12  # P-Net's receptive field: the smallest face it sees, in pyramid pixels
PNET_STRIDE = 2
NMS_PNET_PER_SCALE = 0.5
NMS_PNET_ALL_SCALES = 0.7
NMS_RNET = 0.7
NMS_ONET = 0.7  # over the smaller box's area, so a box inside another one is dropped


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _normalise(rgb: torch.Tensor) -> torch.Tensor:
    # The weights expect RGB scaled as (x - 127.5) / 128.
    return (rgb - 127.5) * (1.0 / 128.0)


def pyramid_scales(height: int, width: int, min_face_size: float, scale_factor: float) -> list[float]:
    """Scales at which a face of `min_face_size` px and up fills P-Net's 12 px window."""
    scale = PNET_WINDOW / min_face_size
    scales = []
    while min(height, width) * scale >= PNET_WINDOW:
        scales.append(scale)
        scale *= scale_factor
    return scales


def pyramid_sizes(
    height: int, width: int, min_face_size: float = 20, scale_factor: float = 0.709
) -> list[tuple[int, int]]:
    """(h, w) of every pyramid level P-Net runs on for a frame (the sizes `MTCNN.detect` resizes to)."""
    if min_face_size < PNET_WINDOW or not 0 < scale_factor < 1:
        raise InvalidInputError(f"need min_face_size >= {PNET_WINDOW} and 0 < scale_factor < 1")
    return [
        (math.ceil(height * s), math.ceil(width * s))
        for s in pyramid_scales(height, width, min_face_size, scale_factor)
    ]


def pnet_image_range(
    max_frame_hw: tuple[int, int], min_face_size: float = 20, scale_factor: float = 0.709
) -> tuple[tuple[int, int], ...]:
    """P-Net's (min, opt, max) input size over every pyramid level of frames up to `max_frame_hw`: min
    12 x 12 (the smallest level any frame gives), max the first level of the largest frame, opt the
    middle level, where the pyramid spends most calls."""
    sizes = pyramid_sizes(*max_frame_hw, min_face_size, scale_factor)
    if not sizes:
        raise InvalidInputError(f"a {max_frame_hw} frame is too small for faces of {min_face_size} px")
    opt = sizes[len(sizes) // 2]
    low = (PNET_WINDOW, PNET_WINDOW)
    return low, (max(opt[0], low[0]), max(opt[1], low[1])), sizes[0]


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def _square(boxes: torch.Tensor) -> torch.Tensor:
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)


@register_detector("mtcnn")
@register_model("mtcnn")
class MTCNN(nn.Module):
    """MTCNN with the `mtcnn` PyPI package's pretrained weights.

    Args:
        min_face_size: smallest face side (px) searched for; >= 12 (P-Net's window). Smaller values
            search more pyramid levels and cost more time.
        thresholds: face-probability thresholds of P-Net, R-Net and O-Net.
        scale_factor: ratio between pyramid levels, in (0, 1).
        device: torch device the nets run on ("cpu", "cuda", "cuda:1", ...).
    """

    MIN_FACE_SIZE_FLOOR = float(PNET_WINDOW)  # P-Net's window: smaller faces need the image upscaled

    def __init__(
        self,
        min_face_size: float = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        if not isinstance(min_face_size, numbers.Real) or not min_face_size >= PNET_WINDOW:
            raise InvalidInputError(
                f"min_face_size={min_face_size} is below MTCNN's {PNET_WINDOW} px window; "
                f"use min_face_size >= {PNET_WINDOW} (upscale the image to find smaller faces)"
            )
        thresholds = tuple(thresholds) if isinstance(thresholds, (list, tuple)) else (thresholds,)
        if len(thresholds) != 3 or not all(isinstance(t, numbers.Real) and 0.0 <= t <= 1.0 for t in thresholds):
            raise InvalidInputError(
                f"thresholds={tuple(thresholds)} must be three probabilities in [0, 1] "
                f"(P-Net, R-Net, O-Net), e.g. (0.6, 0.7, 0.7)"
            )
        if not 0.0 < scale_factor < 1.0:
            raise InvalidInputError(f"scale_factor={scale_factor} must lie in (0, 1); 0.709 is the usual value")
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.pnet = load_pretrained("pnet")
        self.rnet = load_pretrained("rnet")
        self.onet = load_pretrained("onet")
        self.to(device)
        # The three nets' convolutions, pools and PReLUs run about 2x faster channels-last on CPU
        for net in (self.pnet, self.rnet, self.onet):
            net.to(memory_format=torch.channels_last)
        self.eval()
        self._nets = {"pnet": self.pnet, "rnet": self.rnet, "onet": self.onet}
        self.backend = "torch"

    def use_backend(self, kind: str) -> MTCNN:
        """Run the three nets on another runtime backend ('onnxruntime', 'tensorrt', 'auto', 'torch')."""
        device = str(self.device)
        self._nets = {
            name: runner(getattr(self, name), f"mtcnn_{name}", kind, device) for name in ("pnet", "rnet", "onet")
        }
        self.backend = kind
        return self

    @property
    def device(self) -> torch.device:
        return self.pnet.conv1.weight.device

    @property
    def config(self) -> dict:
        """Everything that changes the detections (callers key caches of detections on it)."""
        return {
            "detector": "mtcnn",
            "version": 1,
            "min_face_size": self.min_face_size,
            "thresholds": self.thresholds,
            "scale_factor": self.scale_factor,
        }

    @torch.inference_mode()
    def detect(self, images: ImageInput) -> list[Detections]:
        """Faces in one BGR uint8 HxWx3 image or a list of them (sizes may differ): one Detections per image."""
        arrays, _ = as_bgr_images(images)
        if not arrays:
            return []
        # BGR uint8 HWC -> RGB float CHW, on the device, left in 0..255 so crops pad with black.
        rgb = [
            torch.from_numpy(np.ascontiguousarray(a[:, :, ::-1].transpose(2, 0, 1))).to(self.device).float()
            for a in arrays
        ]
        index, boxes, scores = self._stage_pnet(rgb)
        index, boxes, scores = self._stage_rnet(rgb, index, boxes)
        index, boxes, scores, landmarks = self._stage_onet(rgb, index, boxes)
        return self._split(len(arrays), index, boxes, scores, landmarks)

    def forward(self, images: ImageInput) -> list[Detections]:
        return self.detect(images)

    def _stage_pnet(self, rgb: list[torch.Tensor]):
        by_size = defaultdict(list)
        for i, image in enumerate(rgb):
            by_size[tuple(image.shape[-2:])].append(i)
        found_index, found_boxes, found_scores, found_offsets = [], [], [], []
        for (height, width), members in by_size.items():
            batch = _normalise(torch.stack([rgb[i] for i in members]))
            member_ids = torch.tensor(members, device=self.device)
            for scale in pyramid_scales(height, width, self.min_face_size, self.scale_factor):
                size = (math.ceil(height * scale), math.ceil(width * scale))  # as pyramid_sizes
                prob, offsets = self._nets["pnet"](_channels_last(F.interpolate(batch, size=size, mode="area")))
                b, y, x = (prob > self.thresholds[0]).nonzero(as_tuple=True)
                if b.numel() == 0:
                    continue
                # Window edges in pyramid pixels -> image pixels, with the resize's exact ratio per axis.
                sx, sy = size[1] / width, size[0] / height
                x1, y1 = (x * PNET_STRIDE).float(), (y * PNET_STRIDE).float()
                windows = torch.stack([x1 / sx, y1 / sy, (x1 + PNET_WINDOW) / sx, (y1 + PNET_WINDOW) / sy], dim=1)
                window_scores = prob[b, y, x]
                image_index = member_ids[b]
                keep = batched_nms(windows, window_scores, image_index, NMS_PNET_PER_SCALE)
                found_index.append(image_index[keep])
                found_boxes.append(windows[keep])
                found_scores.append(window_scores[keep])
                found_offsets.append(offsets[b, :, y, x][keep])
        if not found_index:
            return self._nothing()
        index, boxes = torch.cat(found_index), torch.cat(found_boxes)
        scores, offsets = torch.cat(found_scores), torch.cat(found_offsets)
        keep = batched_nms(boxes, scores, index, NMS_PNET_ALL_SCALES)
        boxes = _square(_regress(boxes[keep], offsets[keep]))
        return index[keep], boxes, scores[keep]

    def _stage_rnet(self, rgb, index, boxes):
        if index.numel() == 0:
            return self._nothing()
        prob, offsets = self._nets["rnet"](_channels_last(_normalise(crop_resize(rgb, index, boxes, 24))))
        passed = prob > self.thresholds[1]
        index, boxes, scores = index[passed], _regress(boxes[passed], offsets[passed]), prob[passed]
        keep = batched_nms(boxes, scores, index, NMS_RNET)
        return index[keep], _square(boxes[keep]), scores[keep]

    def _stage_onet(self, rgb, index, boxes):
        if index.numel() == 0:
            return (*self._nothing(), torch.zeros((0, 5, 2), device=self.device))
        prob, offsets, points = self._nets["onet"](_channels_last(_normalise(crop_resize(rgb, index, boxes, 48))))
        passed = prob > self.thresholds[2]
        index, boxes, scores = index[passed], boxes[passed], prob[passed]
        offsets, points = offsets[passed], points[passed]
        # Landmarks are fractions of the box O-Net saw (before its own regression), 5 x then 5 y;
        # as in the original, box left edge + fraction * width lands on pixel-centre coordinates.
        size = boxes[:, 2:] - boxes[:, :2]
        landmarks = boxes[:, None, :2] + torch.stack([points[:, :5], points[:, 5:]], dim=2) * size[:, None, :]
        boxes = _regress(boxes, offsets)
        keep = batched_nms(boxes, scores, index, NMS_ONET, mode="min")
        return index[keep], boxes[keep], scores[keep], landmarks[keep]

    def _nothing(self):
        device = self.device
        return (
            torch.zeros(0, dtype=torch.long, device=device),
            torch.zeros((0, 4), device=device),
            torch.zeros(0, device=device),
        )

    @staticmethod
    def _split(count, index, boxes, scores, landmarks) -> list[Detections]:
        index, boxes = index.cpu().numpy(), boxes.cpu().numpy().astype(np.float32)
        scores, landmarks = scores.cpu().numpy().astype(np.float32), landmarks.cpu().numpy().astype(np.float32)
        results = []
        for i in range(count):
            mine = np.flatnonzero(index == i)
            mine = mine[np.argsort(-scores[mine], kind="stable")]
            results.append(Detections(boxes[mine], scores[mine], landmarks[mine]))
        return results

    def extra_repr(self) -> str:
        return f"min_face_size={self.min_face_size:g}, thresholds={self.thresholds}, scale_factor={self.scale_factor:g}"


# -- deployment presets of the three nets (fhsdk export / TensorRT profiles) -----------------------

# P-Net is fully convolutional and runs once per pyramid level on all frames of a batch: batch,
# height and width are dynamic. Default profile: 1080p frames of either orientation (the largest
# level of a landscape frame, 648 x 1152, square, so portrait frames fit too), faces down to 20 px,
# up to 8 frames per call (Pipeline(batch_frames=...)); larger batches are split.
register_preset(
    ModelPreset(
        name="mtcnn_pnet",
        io=ModelIO(
            (image_spec((-1, 3, -1, -1)),),
            (TensorSpec("prob", F32, (-1, -1, -1)), TensorSpec("bbox_reg", F32, (-1, 4, -1, -1))),
            {"image": (1, 3, 48, 64)},
        ),
        build=lambda: load_pretrained("pnet").eval(),
        batch_range=(1, 4, 8),
        spatial_range=square_max(pnet_image_range((1080, 1920), min_face_size=20)),
    )
)
# R-Net sees every P-Net candidate of the frames in a call: 614-675 per frame of crowd_1080p.mp4,
# so the optimum is sized for about two frames and the maximum for six.
register_preset(
    ModelPreset(
        name="mtcnn_rnet",
        io=ModelIO(
            (image_spec((-1, 3, 24, 24)),),
            (TensorSpec("prob", F32, (-1,)), TensorSpec("bbox_reg", F32, (-1, 4))),
            {"image": (1, 3, 24, 24)},
        ),
        build=lambda: load_pretrained("rnet").eval(),
        batch_range=(1, 1024, 4096),
    )
)
register_preset(
    ModelPreset(
        name="mtcnn_onet",
        io=ModelIO(
            (image_spec((-1, 3, 48, 48)),),
            (
                TensorSpec("prob", F32, (-1,)),
                TensorSpec("bbox_reg", F32, (-1, 4)),
                TensorSpec("landmarks", F32, (-1, 10)),
            ),
            {"image": (1, 3, 48, 48)},
        ),
        build=lambda: load_pretrained("onet").eval(),
        batch_range=(1, 128, 1024),  # the R-Net survivors after NMS: tens per crowd frame
    )
)
