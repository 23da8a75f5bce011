"""Run a network through any backend where code expects the torch module: tensors in, tensors out.

The SDK's stages (MTCNN's cascade, the embedder, the hallucinator) call their networks as torch
modules. `BackendModule` lets them call an ONNX Runtime or TensorRT backend of the same network
instead, without knowing which: the runtime still knows nothing of faces.
"""

from __future__ import annotations

import numpy as np
import torch

from fhsdk.runtime.factory import create_backend


class BackendModule:
    def __init__(self, module: torch.nn.Module, preset: str, kind: str, device: str = "cpu"):
        self.backend = create_backend(kind, module, device=device, model_name=preset)
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
            torch.from_numpy(np.ascontiguousarray(outputs[name])).to(x.device) if isinstance(outputs[name], np.ndarray)
            else outputs[name]
            for name in self.output_names
        )
        return tensors[0] if len(tensors) == 1 else tensors


def runner(module: torch.nn.Module, preset: str, kind: str, device: str = "cpu"):
    """The module itself for the torch backend, else a BackendModule around it."""
    if kind == "torch":
        return module
    return BackendModule(module, preset, kind, device)
