"""TensorRT backend: runs an fhsdk engine file with the TensorRT 10 name-based API.

Device buffers are PyTorch CUDA tensors (no pycuda): inputs are copied to the device if needed,
outputs are allocated with the shapes the execution context resolves, and
`execute_async_v3` is enqueued on PyTorch's current stream, so results are ordered with later
torch work on the same stream without a host synchronisation. Outputs stay on the GPU.

Written against NVIDIA's documented TensorRT 10 Python API and not run on the development machine
(no TensorRT, no GPU); see docs/RUNTIME.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from fhsdk.errors import InvalidInputError
from fhsdk.runtime.base import Backend, ModelIO
from fhsdk.runtime.build import build_engine, cuda_device_identity, default_profile, import_tensorrt
from fhsdk.runtime.engine_cache import EngineCacheError, read_engine, read_header
from fhsdk.runtime.torch_backend import resolve_torch_device
from fhsdk.runtime.trt_plan import IOPlan, OptimizationProfile

logger = logging.getLogger(__name__)

# Tried in order when an FP16 engine fails parity: layer types whose FP16 range or accumulation
# most often hurts (reductions, normalisations, softmax), then everything FP32 but convolutions.
DEFAULT_PIN_SEQUENCE: tuple[tuple[str, ...], ...] = (
    ("REDUCE", "NORMALIZATION", "SOFTMAX", "UNARY"),
    ("REDUCE", "NORMALIZATION", "SOFTMAX", "UNARY", "ELEMENTWISE", "SCALE", "ACTIVATION", "POOLING"),
)


class TensorRTBackend(Backend):
    """Runs a serialized engine written by `build_engine` (an fhsdk .engine cache file)."""

    name = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike, device: str = "cuda") -> None:
        trt = import_tensorrt()
        self._device = resolve_torch_device(device)
        if self._device.type != "cuda":
            raise InvalidInputError("the tensorrt backend runs on CUDA devices only: use device='cuda'")
        self.engine_path = Path(engine_path)
        header, _ = read_header(self.engine_path)
        key = header["key"]
        gpu_name, capability = cuda_device_identity(self._device.index or 0)
        if (key["tensorrt_version"], key["gpu_name"], list(key["compute_capability"])) != (
            trt.__version__, gpu_name, list(capability)
        ):
            raise EngineCacheError(
                f"engine '{self.engine_path}' was built with TensorRT {key['tensorrt_version']} for "
                f"{key['gpu_name']} (sm {key['compute_capability']}), but this is TensorRT {trt.__version__} "
                f"on {gpu_name} (sm {list(capability)}): rebuild it with `fhsdk build-engine`"
            )
        engine_bytes = read_engine(self.engine_path)
        self._trt_logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._trt_logger)
        with torch.cuda.device(self._device):
            self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
            if self.engine is None:
                raise EngineCacheError(f"TensorRT could not deserialize '{self.engine_path}': rebuild it")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.plan = IOPlan.from_engine_description([
            (n, self.engine.get_tensor_mode(n).name, self.engine.get_tensor_dtype(n).name,
             tuple(self.engine.get_tensor_shape(n)))
            for n in names
        ])
        self.profile = OptimizationProfile(tuple(
            (n, tuple(r["min"]), tuple(r["opt"]), tuple(r["max"])) for n, r in sorted(key["profile"].items())
        ))
        inputs, outputs = self.plan.specs()
        super().__init__(ModelIO(inputs, outputs), device, key["precision"])

    @classmethod
    def from_onnx(
        cls,
        onnx_path: str | os.PathLike,
        device: str = "cuda",
        precision: str = "fp16",
        model_name: str | None = None,
        batch_range: tuple[int, int, int] | None = None,
        spatial_range=None,
        pin_fp32_layers: Sequence[str] = (),
        pin_fp32_layer_types: Sequence[str] = (),
        cache_root: str | os.PathLike | None = None,
        **build_options: Any,
    ) -> "TensorRTBackend":
        """Build (or reuse from the cache) an engine for an ONNX file, with the preset's profile."""
        profile = default_profile(onnx_path, model_name, batch_range, spatial_range)
        shapes = [{n: r[i] for n, *r in profile.shapes} for i in range(3)]
        index = resolve_torch_device(device).index or 0
        result = build_engine(
            onnx_path, *shapes, fp16=precision == "fp16", pin_fp32_layers=pin_fp32_layers,
            pin_fp32_layer_types=pin_fp32_layer_types, cache_root=cache_root, device_index=index,
            **build_options,
        )
        return cls(result.engine_path, device=device)

    def _run(self, feeds: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        with torch.cuda.device(self._device):
            stream = torch.cuda.current_stream(self._device)
            shapes = {name: tuple(value.shape) for name, value in feeds.items()}
            self.profile.check(shapes)
            keep_alive = []
            for tensor_plan in self.plan.inputs:
                value = feeds[tensor_plan.name]
                tensor = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
                tensor = tensor.to(self._device, getattr(torch, tensor_plan.dtype), non_blocking=True).contiguous()
                keep_alive.append(tensor)
                self.context.set_input_shape(tensor_plan.name, tuple(tensor.shape))
                self.context.set_tensor_address(tensor_plan.name, tensor.data_ptr())
            outputs = {}
            for tensor_plan in self.plan.outputs:
                shape = tuple(self.context.get_tensor_shape(tensor_plan.name))
                out = torch.empty(shape, dtype=getattr(torch, tensor_plan.dtype), device=self._device)
                self.context.set_tensor_address(tensor_plan.name, out.data_ptr())
                outputs[tensor_plan.name] = out
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f"TensorRT failed to enqueue '{self.engine_path}' (see the TensorRT log)")
            # Inputs made here are freed after return; the caching allocator is stream-ordered,
            # so their memory is only reused by work queued after this engine on the same stream.
            del keep_alive
            return outputs


def build_fp16_with_pinback(
    onnx_path: str | os.PathLike,
    reference: Backend,
    feeds: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    min_cosine: float = 0.999,
    pin_sequence: Sequence[Sequence[str]] = DEFAULT_PIN_SEQUENCE,
    device: str = "cuda",
    **options: Any,
):
    """Build an FP16 engine and verify it against `reference` (PyTorch FP32); on failure rebuild
    with each layer-type set of `pin_sequence` pinned to FP32 until parity holds.

    Returns (backend, VerifyResult, pinned types). If nothing passes, the last attempt is
    returned with its FAIL result so the caller decides (e.g. deploy FP32).
    """
    from fhsdk.runtime.verify import verify_backend

    attempts: list[tuple[str, ...]] = [()] + [tuple(types) for types in pin_sequence]
    backend = result = None
    for types in attempts:
        present = _present_layer_types(onnx_path, types) if types else ()
        backend = TensorRTBackend.from_onnx(onnx_path, device=device, precision="fp16",
                                            pin_fp32_layer_types=present, **options)
        result = verify_backend(backend, reference, feeds, min_cosine=min_cosine)
        logger.info("FP16 with %s pinned to FP32: %s", present or "nothing", result.status)
        if result.passed:
            return backend, result, present
    return backend, result, present


def _present_layer_types(onnx_path: str | os.PathLike, types: Sequence[str]) -> tuple[str, ...]:
    """The subset of `types` that the parsed network contains (pinning absent types is an error)."""
    trt = import_tensorrt()
    trt_logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(trt_logger)  # kept referenced: the network must not outlive it
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        raise InvalidInputError(f"TensorRT cannot parse '{onnx_path}'")
    found = {network.get_layer(i).type.name for i in range(network.num_layers)}
    return tuple(t for t in types if t.upper() in found)
