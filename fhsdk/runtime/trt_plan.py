"""TensorRT-independent planning: optimisation profiles, shape strings, IO plans, layer pinning.

Everything here is plain Python so it is tested on machines without TensorRT; tensorrt_backend.py
and build.py feed TensorRT's objects through these functions as names, strings and tuples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fhsdk.errors import InvalidInputError
from fhsdk.runtime.base import TensorSpec

Shape = tuple[int, ...]
HW = tuple[int, int]

# MTCNN's P-Net sees a 12x12 window; pyramid levels smaller than that are not run.


@dataclass(frozen=True)
class OptimizationProfile:
    """One TensorRT optimisation profile: per dynamic input, its (min, opt, max) shapes."""

    shapes: tuple[tuple[str, Shape, Shape, Shape], ...]

    def __post_init__(self) -> None:
        for name, low, opt, high in self.shapes:
            if not (len(low) == len(opt) == len(high)):
                raise InvalidInputError(f"profile for '{name}': min/opt/max shapes differ in rank")
            for a, b, c in zip(low, opt, high):
                if not (1 <= a <= b <= c):
                    raise InvalidInputError(
                        f"profile for '{name}' needs 1 <= min <= opt <= max in every dimension, "
                        f"got min={low}, opt={opt}, max={high}"
                    )

    @classmethod
    def from_shapes(
        cls, min_shapes: Mapping[str, Shape], opt_shapes: Mapping[str, Shape], max_shapes: Mapping[str, Shape]
    ) -> OptimizationProfile:
        """From trtexec-style --minShapes/--optShapes/--maxShapes dictionaries."""
        names = sorted(min_shapes)
        if sorted(opt_shapes) != names or sorted(max_shapes) != names:
            raise InvalidInputError(
                f"min, opt and max shapes must name the same inputs: {sorted(min_shapes)}, "
                f"{sorted(opt_shapes)}, {sorted(max_shapes)}"
            )
        return cls(tuple((n, tuple(min_shapes[n]), tuple(opt_shapes[n]), tuple(max_shapes[n])) for n in names))

    def names(self) -> list[str]:
        return [entry[0] for entry in self.shapes]

    def range(self, name: str) -> tuple[Shape, Shape, Shape]:
        for entry in self.shapes:
            if entry[0] == name:
                return entry[1], entry[2], entry[3]
        raise KeyError(name)

    def max_batch(self) -> int | None:
        """The largest batch (axis 0) every profiled input accepts; None without profiled inputs."""
        return min((high[0] for _, _, _, high in self.shapes), default=None)

    def to_dict(self) -> dict[str, dict[str, list[int]]]:
        return {n: {"min": list(a), "opt": list(b), "max": list(c)} for n, a, b, c in self.shapes}

    def check(self, shapes: Mapping[str, Shape]) -> None:
        """Raise InvalidInputError unless every given input shape lies inside this profile."""
        for name, shape in shapes.items():
            if name not in self.names():
                continue
            low, _, high = self.range(name)
            if len(shape) != len(low) or any(not (a <= s <= c) for a, s, c in zip(low, shape, high)):
                raise InvalidInputError(
                    f"input '{name}' has shape {tuple(shape)}, outside the engine's profile "
                    f"min={low} max={high}: split the batch, or rebuild the engine with larger "
                    f"--max-shapes (fhsdk build-engine)"
                )


def compute_profile(
    inputs: Sequence[TensorSpec],
    batch: tuple[int, int, int] = (1, 8, 32),
    spatial: Mapping[str, tuple[HW, HW, HW]] | None = None,
) -> OptimizationProfile:
    """Profile for specs whose dynamic axes are batch (axis 0) and, optionally, H and W (axes 2, 3).

    `batch` is (min, opt, max); `spatial` maps an input name to ((h, w) min, opt, max) and is
    required for every input with a dynamic H or W (P-Net's image pyramid levels).
    """
    spatial = dict(spatial or {})
    entries = []
    for spec in inputs:
        if not spec.dynamic_axes:
            continue
        low, opt, high = list(spec.shape), list(spec.shape), list(spec.shape)
        for axis in spec.dynamic_axes:
            if axis == 0:
                low[0], opt[0], high[0] = batch
            elif axis in (2, 3) and len(spec.shape) == 4:
                if spec.name not in spatial:
                    raise InvalidInputError(
                        f"input '{spec.name}' has a dynamic height/width: give its "
                        f"((h, w) min, opt, max) range in `spatial`"
                    )
                ranges = spatial[spec.name]
                for target, (h, w) in zip((low, opt, high), ranges):
                    target[2], target[3] = h, w
            else:
                raise InvalidInputError(
                    f"input '{spec.name}' has dynamic axis {axis}; only batch (0) and H, W (2, 3) "
                    f"of NCHW inputs can be profiled here: give explicit min/opt/max shapes"
                )
        entries.append((spec.name, tuple(low), tuple(opt), tuple(high)))
    return OptimizationProfile(tuple(sorted(entries)))


def square_max(ranges: tuple[HW, HW, HW]) -> tuple[HW, HW, HW]:
    """The same (min, opt, max) with max made square on its longer side: covers both orientations."""
    low, opt, (height, width) = ranges
    side = max(height, width)
    return low, opt, (side, side)


# -- trtexec-style shape strings ------------------------------------------------------------------


def parse_shapes(text: str) -> dict[str, Shape]:
    """'image:1x3x150x150,other:4x10' -> {'image': (1, 3, 150, 150), 'other': (4, 10)}."""
    shapes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, dims = item.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 1:
            raise InvalidInputError(f"bad shape '{item}': write NAME:DxDxD..., e.g. image:1x3x150x150, comma-separated")
        shapes[name] = shape
    return shapes


def format_shapes(shapes: Mapping[str, Shape]) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in shape)}" for name, shape in shapes.items())


# -- IO plan ----------------------------------------------------------------------------------------

# TensorRT DataType member names -> torch dtype attribute names.
TRT_TO_TORCH_DTYPE = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "FP8": "float8_e4m3fn",
}


def torch_dtype_name(trt_dtype_name: str) -> str:
    """torch dtype name for a TensorRT DataType name ('FLOAT' or 'DataType.FLOAT' -> 'float32')."""
    key = trt_dtype_name.rsplit(".", 1)[-1].upper()
    if key not in TRT_TO_TORCH_DTYPE:
        raise InvalidInputError(
            f"TensorRT tensor type {trt_dtype_name} has no torch equivalent here; fhsdk engines use "
            f"{sorted(TRT_TO_TORCH_DTYPE)}"
        )
    return TRT_TO_TORCH_DTYPE[key]


@dataclass(frozen=True)
class IOTensor:
    name: str
    is_input: bool
    dtype: str  # torch/NumPy dtype name
    shape: Shape  # -1 for dynamic


@dataclass(frozen=True)
class IOPlan:
    """An engine's IO tensors in engine order, split into inputs and outputs."""

    tensors: tuple[IOTensor, ...]

    @classmethod
    def from_engine_description(cls, entries: Sequence[tuple[str, str, str, Sequence[int]]]) -> IOPlan:
        """From (name, mode name 'INPUT'/'OUTPUT', TensorRT dtype name, shape) per IO tensor."""
        tensors = []
        for name, mode, dtype, shape in entries:
            mode_key = str(mode).rsplit(".", 1)[-1].upper()
            if mode_key not in ("INPUT", "OUTPUT"):
                raise InvalidInputError(f"tensor '{name}' has IO mode {mode}, neither INPUT nor OUTPUT")
            tensors.append(IOTensor(name, mode_key == "INPUT", torch_dtype_name(dtype), tuple(int(d) for d in shape)))
        return cls(tuple(tensors))

    @property
    def inputs(self) -> tuple[IOTensor, ...]:
        return tuple(t for t in self.tensors if t.is_input)

    @property
    def outputs(self) -> tuple[IOTensor, ...]:
        return tuple(t for t in self.tensors if not t.is_input)

    def specs(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """(input specs, output specs) for the backend interface."""
        return (
            tuple(TensorSpec(t.name, t.dtype, t.shape) for t in self.inputs),
            tuple(TensorSpec(t.name, t.dtype, t.shape) for t in self.outputs),
        )

    def input_shapes(self, batch: int, spatial: HW | None = None) -> dict[str, Shape]:
        """Concrete input shapes for a batch size (and H, W for inputs with dynamic spatial axes)."""
        shapes = {}
        for tensor in self.inputs:
            sizes = {0: batch}
            if spatial is not None:
                sizes.update({2: spatial[0], 3: spatial[1]})
            shapes[tensor.name] = TensorSpec(tensor.name, tensor.dtype, tensor.shape).concrete(sizes)
        return shapes
