"""Run a network through any backend where code expects the torch module: tensors in, tensors out.

The SDK's stages (MTCNN's cascade, the embedder, the hallucinator) call their networks as torch
modules. `BackendModule` lets them call an ONNX Runtime or TensorRT backend of the same network
instead, without knowing which: the runtime still knows nothing of faces.
"""

from __future__ import annotations

import numpy as np
import torch

from fhsdk.errors import BackendUnavailableError
from fhsdk.runtime.factory import create_backend, default_precision


class BackendModule:
    def __init__(
        self, module: torch.nn.Module, preset: str, kind: str, device: str = "cpu", precision: str | None = None
    ):
        self.backend = create_backend(kind, module, device=device, precision=precision, model_name=preset)
        self.input_name = self.backend.inputs[0].name
        self.output_names = [spec.name for spec in self.backend.outputs]

    @property
    def name(self) -> str:
        return self.backend.name

    def __call__(self, x: torch.Tensor):
        feed = x.detach().contiguous()
        if self.backend.name == "onnxruntime" or feed.device.type == "cpu":
            feed = feed.cpu().numpy()
        outputs = self.backend.run({self.input_name: feed})
        tensors = tuple(
            torch.from_numpy(np.ascontiguousarray(outputs[name])).to(x.device)
            if isinstance(outputs[name], np.ndarray)
            else outputs[name]
            for name in self.output_names
        )
        return tensors[0] if len(tensors) == 1 else tensors


class AutocastModule:
    """A torch module run under CUDA FP16 autocast, returning float32 tensors (the torch backend's
    FP16 on the SDK's direct path, where stages call the module itself)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module

    def __call__(self, x: torch.Tensor):
        with torch.autocast("cuda", torch.float16):
            result = self.module(x)
        if isinstance(result, torch.Tensor):
            return result.float()
        return tuple(t.float() for t in result)


def runner(module: torch.nn.Module, preset: str, kind: str, device: str = "cpu", precision: str | None = None):
    """For the torch backend the module itself (FP32) or its FP16 autocast wrapper; else a
    BackendModule around it. `precision` defaults to the device's (FP16 on CUDA, FP32 on CPU)."""
    precision = precision or default_precision(device)
    if kind == "torch":
        if precision == "fp16" and not device.startswith("cuda"):
            raise BackendUnavailableError("the torch backend runs FP16 on CUDA only: use precision='fp32' on CPU")
        return AutocastModule(module) if precision == "fp16" else module
    return BackendModule(module, preset, kind, device, precision)
