"""Deployment presets: how a network crosses the export boundary, registered by name.

A preset says a network's input and output names, which axes are dynamic (batch for all; height and
width too for fully convolutional nets), a concrete example shape, its default TensorRT profile and how
to build it. The runtime only keeps the registry: each network registers its own preset beside its code
(fhsdk/models/presets.py for the recogniser and generators, fhsdk/detect/ for the detectors' nets), from
the constants that code uses, so a model's input side is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from fhsdk.registry import Registry
from fhsdk.runtime.base import ModelIO, TensorSpec
from fhsdk.runtime.trt_plan import HW

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
                    a: "batch"
                    if a == 0
                    else f"{spec.name}_{spatial.get(a, f'dim{a}') if len(spec.shape) == 4 else f'dim{a}'}"
                    for a in spec.dynamic_axes
                }
        return axes


PRESETS: Registry[ModelPreset] = Registry(
    "deployment preset",
    hint=" (presets register when their model's module is imported: fhsdk.models, fhsdk.detect)",
)


def register_preset(preset: ModelPreset) -> ModelPreset:
    return PRESETS.add(preset.name, preset, replace=True)


def get_preset(name: str) -> ModelPreset:
    return PRESETS.get(name)


def list_presets() -> list[str]:
    return PRESETS.names()


def image_spec(shape: tuple[int, ...]) -> TensorSpec:
    """The float32 input every fhsdk network takes, named "image"."""
    return TensorSpec("image", F32, shape)
