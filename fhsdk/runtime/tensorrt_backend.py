"""TensorRT backend: runs an fhsdk engine file with the TensorRT 10.x / 11.x name-based API.

Device buffers are PyTorch CUDA tensors (no pycuda). Each backend enqueues on its own non-default
CUDA stream (TensorRT warns that the default stream costs extra synchronisation): the stream first
waits for the caller's current stream, the engine runs, then the caller's stream waits for it,
so results are ordered with later torch work without a host synchronisation. Every tensor used
on the engine's stream is marked with `record_stream`, so the caching allocator never hands its
memory to other work before the engine is done with it. Batches larger than the profile's
maximum are split (Backend.run). Outputs stay on the GPU.

Written against NVIDIA's documented TensorRT 10 and 11 Python APIs and not run on a GPU yet;
tests/test_tensorrt_api.py drives it through a stand-in module that follows those APIs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fhsdk.errors import InvalidInputError
from fhsdk.runtime.base import Backend, ModelIO
from fhsdk.runtime.build import build_engine, cuda_device_identity, default_profile, import_tensorrt
from fhsdk.runtime.engine_cache import EngineCacheError, read_engine, read_header
from fhsdk.runtime.export import export_fp16
from fhsdk.runtime.fp16_onnx import graph_precision
from fhsdk.runtime.torch_backend import resolve_torch_device
from fhsdk.runtime.trt_plan import IOPlan, OptimizationProfile

logger = logging.getLogger(__name__)


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
            trt.__version__,
            gpu_name,
            list(capability),
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
            self._stream = torch.cuda.Stream(self._device)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.plan = IOPlan.from_engine_description(
            [
                (
                    n,
                    self.engine.get_tensor_mode(n).name,
                    self.engine.get_tensor_dtype(n).name,
                    tuple(self.engine.get_tensor_shape(n)),
                )
                for n in names
            ]
        )
        self.profile = OptimizationProfile(
            tuple((n, tuple(r["min"]), tuple(r["opt"]), tuple(r["max"])) for n, r in sorted(key["profile"].items()))
        )
        inputs, outputs = self.plan.specs()
        super().__init__(ModelIO(inputs, outputs), device, key["precision"], max_batch=self.profile.max_batch())

    @classmethod
    def from_onnx(
        cls,
        onnx_path: str | os.PathLike,
        device: str = "cuda",
        precision: str = "fp16",
        model_name: str | None = None,
        batch_range: tuple[int, int, int] | None = None,
        spatial_range=None,
        cache_root: str | os.PathLike | None = None,
        **build_options: Any,
    ) -> TensorRTBackend:
        """Build (or reuse from the cache) an engine for an ONNX file with the preset's profile.

        precision='fp16' on an FP32 file builds from its parity-checked FP16 graph (export_fp16).
        """
        if precision == "fp16" and graph_precision(onnx_path) == "fp32":
            onnx_path = export_fp16(onnx_path).path
        elif precision == "fp32" and graph_precision(onnx_path) == "fp16":
            raise InvalidInputError(f"'{onnx_path}' is an FP16 graph: build FP32 engines from the FP32 export")
        profile = default_profile(onnx_path, model_name, batch_range, spatial_range)
        shapes = [{n: r[i] for n, *r in profile.shapes} for i in range(3)]
        index = resolve_torch_device(device).index or 0
        result = build_engine(onnx_path, *shapes, cache_root=cache_root, device_index=index, **build_options)
        return cls(result.engine_path, device=device)

    def _run(self, feeds: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        with torch.cuda.device(self._device):
            caller = torch.cuda.current_stream(self._device)
            self.profile.check({name: tuple(value.shape) for name, value in feeds.items()})
            self._stream.wait_stream(caller)  # inputs the caller just produced
            buffers, outputs = self._bind(feeds)
            for tensor in buffers:  # used on the engine's stream: not reusable before it is done
                tensor.record_stream(self._stream)
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"TensorRT failed to enqueue '{self.engine_path}' (see the TensorRT log)")
            caller.wait_stream(self._stream)
            return outputs

    def _bind(self, feeds: Mapping[str, Any]) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Sets input shapes and every IO address on the context; returns (all buffers, outputs)."""
        buffers = []
        for tensor_plan in self.plan.inputs:
            value = feeds[tensor_plan.name]
            tensor = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
            tensor = tensor.to(self._device, getattr(torch, tensor_plan.dtype), non_blocking=True).contiguous()
            buffers.append(tensor)
            if not self.context.set_input_shape(tensor_plan.name, tuple(tensor.shape)):
                raise InvalidInputError(
                    f"TensorRT refused shape {tuple(tensor.shape)} for input '{tensor_plan.name}' of "
                    f"'{self.engine_path}' (profile {self.profile.to_dict()}): rebuild with larger shapes"
                )
            self._set_address(tensor_plan.name, tensor)
        outputs = {}
        for tensor_plan in self.plan.outputs:
            shape = tuple(self.context.get_tensor_shape(tensor_plan.name))
            if any(size < 0 for size in shape):
                raise InvalidInputError(f"TensorRT could not infer the shape of output '{tensor_plan.name}': {shape}")
            out = torch.empty(shape, dtype=getattr(torch, tensor_plan.dtype), device=self._device)
            buffers.append(out)
            self._set_address(tensor_plan.name, out)
            outputs[tensor_plan.name] = out
        return buffers, outputs

    def _set_address(self, name: str, tensor: torch.Tensor) -> None:
        if not self.context.set_tensor_address(name, tensor.data_ptr()):
            raise RuntimeError(f"TensorRT refused the device address of '{name}' (misaligned or wrong device)")
