"""Per-model deployment presets: IO names, which axes are dynamic, default engine profiles.

A preset is the one place that says how a network crosses the export boundary: its input and
output names, which axes are dynamic (batch for all; height and width too for P-Net and the
fully convolutional hallucinators), a concrete example shape, and the default TensorRT profile.
`build` constructs the real network (lazily imported, so presets load without the model files).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from fhsdk.errors import ConfigError
from fhsdk.runtime.base import ModelIO, TensorSpec
from fhsdk.runtime.trt_plan import HW, pnet_image_range, square_max

F32 = "float32"


@dataclass(frozen=True)
class ModelPreset:
    name: str
    io: ModelIO
    build: Callable[[], nn.Module]
    batch_range: tuple[int, int, int] = (1, 32, 256)  # TensorRT profile (min, opt, max)
    spatial_range: tuple[HW, HW, HW] | None = None  # for inputs with dynamic H, W
    pretrained: bool = True  # False: `build` gives random weights (an architecture; trained weights come from a file)
    notes: str = field(default="", compare=False)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export dynamic_axes built from the specs' -1 dimensions.

        Batch is one shared symbol; every other dynamic axis gets its own symbol per tensor
        (P-Net's output map is not the size of its input image, so they must not share names).
        """
        spatial = {2: "height", 3: "width"}
        axes = {}
        for spec in self.io.inputs + self.io.outputs:
            if spec.dynamic_axes:
                axes[spec.name] = {
                    a: "batch" if a == 0 else f"{spec.name}_{spatial.get(a, f'dim{a}') if len(spec.shape) == 4 else f'dim{a}'}"
                    for a in spec.dynamic_axes
                }
        return axes


_PRESETS: dict[str, ModelPreset] = {}


def register_preset(preset: ModelPreset) -> ModelPreset:
    _PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> ModelPreset:
    if name not in _PRESETS:
        raise ConfigError(f"no deployment preset for model '{name}': choose one of {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def _import(module: str, attribute: str):
    return getattr(importlib.import_module(module), attribute)


def _registry_model(name: str, **kwargs) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        return _import("fhsdk.models.registry", "create_model")(name, **kwargs).eval()

    return build


def _mtcnn_net(which: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        return _import("fhsdk.detect.mtcnn_nets", "load_pretrained")(which).eval()

    return build


def _retinaface_net() -> nn.Module:
    return _import("fhsdk.detect.retinaface", "load_pretrained")().eval()


def _image(shape: tuple[int, ...]) -> TensorSpec:
    return TensorSpec("image", F32, shape)


register_preset(ModelPreset(
    name="dlib_resnet_v1",
    io=ModelIO((_image((-1, 3, 150, 150)),), (TensorSpec("embedding", F32, (-1, 128)),),
               {"image": (1, 3, 150, 150)}),
    build=_registry_model("dlib_resnet_v1"),
    batch_range=(1, 64, 256),  # the embedder sends batches of 64 (Embedder.batch_size)
    notes="dlib's 128-D face recogniser; input normalised RGB 150x150",
))

# P-Net is fully convolutional and runs once per pyramid level on all frames of a batch: batch,
# height and width are dynamic. Default profile: 1080p frames of either orientation (the largest
# level of a landscape frame, 648 x 1152, square, so portrait frames fit too), faces down to 20 px,
# up to 8 frames per call (Pipeline(batch_frames=...)); larger batches are split.
register_preset(ModelPreset(
    name="mtcnn_pnet",
    io=ModelIO((_image((-1, 3, -1, -1)),),
               (TensorSpec("prob", F32, (-1, -1, -1)), TensorSpec("bbox_reg", F32, (-1, 4, -1, -1))),
               {"image": (1, 3, 48, 64)}),
    build=_mtcnn_net("pnet"),
    batch_range=(1, 4, 8),
    spatial_range=square_max(pnet_image_range((1080, 1920), min_face=20)),
))
# R-Net sees every P-Net candidate of the frames in a call: 614-675 per frame of crowd_1080p.mp4,
# so the optimum is sized for about two frames and the maximum for six.
register_preset(ModelPreset(
    name="mtcnn_rnet",
    io=ModelIO((_image((-1, 3, 24, 24)),),
               (TensorSpec("prob", F32, (-1,)), TensorSpec("bbox_reg", F32, (-1, 4))),
               {"image": (1, 3, 24, 24)}),
    build=_mtcnn_net("rnet"),
    batch_range=(1, 1024, 4096),
))
register_preset(ModelPreset(
    name="mtcnn_onet",
    io=ModelIO((_image((-1, 3, 48, 48)),),
               (TensorSpec("prob", F32, (-1,)), TensorSpec("bbox_reg", F32, (-1, 4)),
                TensorSpec("landmarks", F32, (-1, 10))),
               {"image": (1, 3, 48, 48)}),
    build=_mtcnn_net("onet"),
    batch_range=(1, 128, 1024),  # the R-Net survivors after NMS: tens per crowd frame
))

# RetinaFace runs once per batch of frames, padded to a multiple of 32 (any multiple of 32 works;
# other sizes run too). Outputs are per anchor. Default profile: up to four 1080p frames of either
# orientation, or the tiny-face pass of one landscape 1080p frame at upscale 2.4, the Pipeline's
# default min face of 20 px (2592 x 4608; at x3 and x4 build an engine with a larger spatial range).
register_preset(ModelPreset(
    name="retinaface",
    io=ModelIO((_image((-1, 3, -1, -1)),),
               (TensorSpec("loc", F32, (-1, -1, 4)), TensorSpec("scores", F32, (-1, -1)),
                TensorSpec("landmarks", F32, (-1, -1, 10))),
               {"image": (1, 3, 64, 96)}),
    build=_retinaface_net,
    batch_range=(1, 1, 4),
    spatial_range=((32, 32), (1088, 1920), (2592, 4608)),
    notes="input: BGR in 0..255 minus the mean (104, 117, 123); outputs: box and landmark encodings, face probability",
))

# Hallucinators are fully convolutional; the SDK resizes every crop to the model's native side
# (32 px for the packaged EDSR models) and sends batches of 64, so the profile's optimum is 64 x 32 x 32
# and its range covers the 8-32 px sides other models are trained at (output is scale x larger).
for _generator in ("edsr", "rrdb", "sicnn", "srgan", "dsnet"):
    register_preset(ModelPreset(
        name=_generator,
        io=ModelIO((_image((-1, 3, -1, -1)),), (TensorSpec("sr", F32, (-1, 3, -1, -1)),),
                   {"image": (1, 3, 16, 16)}),
        build=_registry_model(_generator),
        batch_range=(1, 64, 256),
        spatial_range=((8, 8), (32, 32), (32, 32)),
        pretrained=False,
        notes="input in [0, 1], output upscaled by the model's scale",
    ))
