"""PyTorch backend: eager execution on CPU or CUDA, FP32 or FP16, optional CUDA graph replay.

FP16 runs under CUDA autocast: weights stay FP32 and PyTorch picks float16 for convolutions and
matrix products while keeping reductions, softmax and normalisations in float32 (its autocast op
lists), the same split fp16_onnx.py makes for the ONNX runtimes. FP16 is refused on CPU rather than
silently run in FP32: a caller who asked for FP16 is measuring or verifying FP16, and a quiet
fallback would make those numbers lie.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fhsdk.errors import BackendUnavailableError, InvalidInputError
from fhsdk.runtime.base import Backend, ModelIO

logger = logging.getLogger(__name__)


def resolve_torch_device(device: str) -> torch.device:
    """torch.device for 'cpu', 'cuda' or 'cuda:N', refusing CUDA where there is none."""
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InvalidInputError(f"unknown device '{device}': use 'cpu', 'cuda' or 'cuda:N'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            f"device '{device}' was requested but this PyTorch build sees no CUDA GPU "
            f"(torch {torch.__version__}): install a CUDA build of PyTorch on a GPU machine, or use device='cpu'"
        )
    if resolved.type not in ("cpu", "cuda"):
        raise InvalidInputError(f"device '{device}' is not supported: use 'cpu' or 'cuda'")
    return resolved


class TorchBackend(Backend):
    """Runs an nn.Module. Inputs are passed positionally in `io.inputs` order; outputs are mapped
    to `io.outputs` by position (tensor or tuple) or by key (dict)."""

    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        io: ModelIO,
        device: str = "cpu",
        precision: str = "fp32",
        cuda_graph_batch: int | None = None,
        max_batch: int | None = None,
    ) -> None:
        super().__init__(io, device, precision, max_batch=max_batch)
        self._device = resolve_torch_device(device)
        if precision == "fp16" and self._device.type != "cuda":
            raise BackendUnavailableError(
                "the torch backend runs FP16 on CUDA only (CPU half-precision kernels are slow and "
                "incomplete): use precision='fp32' on CPU, or device='cuda'"
            )
        self.model = model.eval().to(self._device, torch.float32)
        self._graph = None
        if cuda_graph_batch is not None:
            if self._device.type != "cuda":
                raise BackendUnavailableError("CUDA graphs need device='cuda'; drop cuda_graph_batch on CPU")
            self._capture_cuda_graph(cuda_graph_batch)

    # -- execution -------------------------------------------------------------------------------

    def _to_device(self, array: Any) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array)) if isinstance(array, np.ndarray) else array
        tensor = tensor.to(self._device, non_blocking=True)
        return tensor.float() if tensor.is_floating_point() else tensor

    def _forward(self, tensors: list[torch.Tensor], cache_casts: bool = True) -> dict[str, torch.Tensor]:
        # Graph capture needs cache_casts=False: autocast's weight-cast cache must not outlive it.
        with torch.autocast("cuda", torch.float16, enabled=self.precision == "fp16", cache_enabled=cache_casts):
            result = self.model(*tensors)
        names = self.io.output_names
        if isinstance(result, Mapping):
            missing = [n for n in names if n not in result]
            if missing:
                raise InvalidInputError(f"the model returned keys {list(result)}, missing {missing}")
            return {n: result[n] for n in names}
        if isinstance(result, torch.Tensor):
            result = (result,)
        if len(result) != len(names):
            raise InvalidInputError(
                f"the model returned {len(result)} outputs but the backend names {len(names)}: {names}"
            )
        return dict(zip(names, result))

    def _present(self, outputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        # Interface dtype is the spec's (float32), whatever the compute precision.
        presented = {}
        for spec in self.outputs:
            tensor = outputs[spec.name]
            if tensor.is_floating_point():
                tensor = tensor.to(getattr(torch, spec.dtype))
            presented[spec.name] = tensor.cpu().numpy() if self._device.type == "cpu" else tensor
        return presented

    @torch.inference_mode()
    def _run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        tensors = [self._to_device(feeds[name]) for name in self.io.input_names]
        if self._graph is not None and tuple(tensors[0].shape) == tuple(self._static_inputs[0].shape):
            for static, tensor in zip(self._static_inputs, tensors):
                static.copy_(tensor)
            self._graph.replay()
            # Clone: the next replay overwrites the static outputs.
            return self._present({k: v.clone() for k, v in self._static_outputs.items()})
        return self._present(self._forward(tensors))

    # -- CUDA graphs (written per the PyTorch CUDA graphs docs; runs on GPU machines only) --------

    def _capture_cuda_graph(self, batch: int) -> None:
        """Capture one forward pass at a fixed batch; `run` replays it for inputs of that shape."""
        example = self.io.example_inputs(batch=batch)
        self._static_inputs = [self._to_device(example[name]) for name in self.io.input_names]
        with torch.inference_mode():
            # Warm up on a side stream so lazy initialisation is not captured.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._forward(self._static_inputs)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._static_outputs = self._forward(self._static_inputs, cache_casts=False)
        self._graph = graph
        logger.info("captured a CUDA graph at batch %d; other batch sizes run eagerly", batch)
