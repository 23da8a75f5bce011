"""The backend interface: named input tensors in, named output tensors out.

Runtimes know nothing of faces. A backend runs one network; it is described by the names, dtypes
and shapes of its inputs and outputs (-1 marks a dynamic dimension), and `run` takes a mapping of
input name -> array and returns a dict of output name -> array.

Array conventions, the same for every backend:
- inputs may be NumPy arrays or torch tensors (a backend moves them to its device);
- the interface dtype is the network's own (float32 for every fhsdk model), whatever precision the
  backend computes in: an FP16 backend casts inside, so callers never change their arrays;
- outputs are NumPy arrays on a CPU backend and torch tensors on the device of a CUDA backend, so
  that GPU pipelines keep tensors on the device between stages (`to_numpy` converts either);
- a batch larger than the backend's `max_batch` (a TensorRT profile's maximum, or a limit the
  caller sets) is run in chunks and the outputs concatenated: never refused.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fhsdk.errors import InvalidInputError

PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class TensorSpec:
    """Name, NumPy dtype name and shape of one input or output; -1 marks a dynamic dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(axis for axis, size in enumerate(self.shape) if size < 0)

    def concrete(self, sizes: Mapping[int, int]) -> tuple[int, ...]:
        """This spec's shape with dynamic axes filled from `sizes` (axis -> size)."""
        shape = []
        for axis, size in enumerate(self.shape):
            if size < 0:
                if axis not in sizes:
                    raise InvalidInputError(f"'{self.name}' has a dynamic axis {axis} and no size was given for it")
                size = sizes[axis]
            shape.append(int(size))
        return tuple(shape)


@dataclass(frozen=True)
class ModelIO:
    """A network's input and output specs, plus one concrete shape per input for dry runs/export."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    example_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]

    def example_inputs(self, batch: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the example shapes (batch overridden if given), uniform in [0, 1)."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for spec in self.inputs:
            if spec.name in self.example_shapes:
                shape = list(self.example_shapes[spec.name])
            else:  # dynamic axes default to 1
                shape = list(spec.concrete({axis: 1 for axis in spec.dynamic_axes}))
            if batch is not None:
                shape[0] = batch
            feeds[spec.name] = rng.random(shape, dtype=np.float64).astype(spec.dtype)
        return feeds


def dtype_name(array: Any) -> str:
    """NumPy dtype name of a NumPy array or torch tensor ('float32', 'float16', ...)."""
    dtype = array.dtype
    if isinstance(dtype, np.dtype):
        return dtype.name
    # torch.float32 -> 'float32'; torch.bool -> 'bool'
    return str(dtype).replace("torch.", "")


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy view or copy of a NumPy array or a torch tensor on any device."""
    if isinstance(array, np.ndarray):
        return array
    return array.detach().cpu().numpy()


def check_feeds(specs: Sequence[TensorSpec], feeds: Mapping[str, Any]) -> None:
    """Raise InvalidInputError unless `feeds` has exactly the named inputs with valid dtype/shape."""
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in feeds]
    unknown = [name for name in feeds if name not in expected]
    if missing or unknown:
        raise InvalidInputError(
            f"inputs must be named {expected}; missing {missing}, unexpected {unknown}: "
            f"pass a dict keyed by the backend's input names (backend.inputs)"
        )
    for spec in specs:
        array = feeds[spec.name]
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            raise InvalidInputError(
                f"input '{spec.name}' must be a NumPy array or torch tensor, got {type(array).__name__}"
            )
        got = dtype_name(array)
        if got != spec.dtype:
            raise InvalidInputError(
                f"input '{spec.name}' must have dtype {spec.dtype}, got {got}: "
                f"cast it first (e.g. array.astype(np.{spec.dtype}))"
            )
        shape = tuple(array.shape)
        fits = len(shape) == len(spec.shape) and all(want < 0 or want == have for want, have in zip(spec.shape, shape))
        if not fits or any(size == 0 for size in shape):
            raise InvalidInputError(f"input '{spec.name}' must have shape {_shape_text(spec.shape)}, got {shape}")


def _batch_size(feeds: Mapping[str, Any]) -> int:
    """The shared leading (batch) dimension of the feeds; InvalidInputError if they disagree."""
    sizes = {int(value.shape[0]) for value in feeds.values()}
    if len(sizes) != 1:
        raise InvalidInputError(f"inputs disagree on the batch size (axis 0): {sorted(sizes)}")
    return sizes.pop()


def _concat(parts: Sequence[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis=0)
    return torch.cat(list(parts), dim=0)


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in shape) + ")"


class Backend(abc.ABC):
    """One network behind a runtime. Subclasses set `name` and implement `_run`."""

    name: str = "abstract"

    def __init__(self, io: ModelIO, device: str, precision: str, max_batch: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {PRECISIONS}, got '{precision}'")
        if max_batch is not None and (isinstance(max_batch, bool) or int(max_batch) < 1):
            raise InvalidInputError(f"max_batch must be an integer >= 1 or None, got {max_batch!r}")
        self._io = io
        self.device = device
        self.precision = precision
        self.max_batch = None if max_batch is None else int(max_batch)

    @property
    def io(self) -> ModelIO:
        return self._io

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._io.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._io.outputs

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Run the network on named inputs; returns {output name: array or device tensor}."""
        check_feeds(self.inputs, feeds)
        batch = _batch_size(feeds)
        if self.max_batch is None or batch <= self.max_batch:
            return self._run(feeds)
        chunks = [
            self._run({name: value[start : start + self.max_batch] for name, value in feeds.items()})
            for start in range(0, batch, self.max_batch)
        ]
        return {name: _concat([chunk[name] for chunk in chunks]) for name in chunks[0]}

    __call__ = run

    @abc.abstractmethod
    def _run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Run on validated feeds."""

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}{_shape_text(s.shape)}" for s in self.inputs)
        outs = ", ".join(f"{s.name}{_shape_text(s.shape)}" for s in self.outputs)
        return (
            f"{type(self).__name__}(device={self.device!r}, precision={self.precision!r}, "
            f"inputs=[{ins}], outputs=[{outs}])"
        )
