"""ONNX Runtime backend: CPUExecutionProvider, or CUDAExecutionProvider where installed.

Input and output specs are read from the ONNX session itself (symbolic dimensions become -1), so
this backend needs nothing but the .onnx file. ONNX Runtime runs the graph's own types, so
`precision` must be the graph's: an FP16 backend runs the mixed-precision graph that
`export.export_fp16` writes (create_backend(..., precision="fp16") makes it from an FP32 file); its
inputs and outputs stay float32. On the CPU provider the float16 nodes run through float32 kernels
with casts, which is how FP16 parity is measured there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fhsdk import threads
from fhsdk.errors import BackendUnavailableError, InvalidInputError, WeightsError
from fhsdk.runtime.base import PRECISIONS, Backend, ModelIO, TensorSpec, to_numpy
from fhsdk.runtime.fp16_onnx import graph_precision

# ONNX Runtime's type strings -> NumPy dtype names.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

_OPT_LEVELS = ("disable", "basic", "extended", "all")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise BackendUnavailableError(
            "ONNX Runtime is not installed: run `pip install onnxruntime` (CPU) or "
            "`pip install onnxruntime-gpu` (CUDA), or use backend='torch'"
        ) from error
    return onnxruntime


def cuda_provider_available() -> bool:
    try:
        return "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
    except BackendUnavailableError:
        return False


def _spec(node_arg) -> TensorSpec:
    if node_arg.type not in _ORT_TYPES:
        raise WeightsError(f"ONNX tensor '{node_arg.name}' has unsupported type {node_arg.type}")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (node_arg.shape or ()))
    return TensorSpec(node_arg.name, _ORT_TYPES[node_arg.type], shape)


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX file (path or serialized bytes) with ONNX Runtime."""

    name = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        device: str = "cpu",
        precision: str = "fp32",
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        graph_optimization_level: str = "all",
        allow_spinning: bool = False,
        max_batch: int | None = None,
    ) -> None:
        ort = import_onnxruntime()
        self._check_precision(model, precision)
        providers = self._providers(ort, device)
        if graph_optimization_level not in _OPT_LEVELS:
            raise InvalidInputError(
                f"graph_optimization_level must be one of {_OPT_LEVELS}, got '{graph_optimization_level}'"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[graph_optimization_level]
        # unset: the process's thread setting (fhsdk.threads), not ORT's one thread per core
        options.intra_op_num_threads = threads.check(
            intra_op_threads if intra_op_threads is not None else threads.current(), "intra_op_threads"
        )
        options.inter_op_num_threads = threads.check(
            inter_op_threads if inter_op_threads is not None else threads.current(), "inter_op_threads"
        )
        # ORT's worker threads spin after each run by default; a pipeline holds five sessions next to
        # PyTorch, and their spinning pools steal the cores the next stage needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        source = model if isinstance(model, bytes) else os.fspath(model)
        if not isinstance(model, bytes) and not os.path.isfile(source):
            raise WeightsError(f"ONNX file '{source}' does not exist: export it with `fhsdk export`")
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as error:  # ORT raises its own exception types for bad files
            raise WeightsError(
                f"ONNX Runtime cannot load '{source if isinstance(source, str) else 'bytes'}': {error}"
            ) from error
        io = ModelIO(
            inputs=tuple(_spec(a) for a in self.session.get_inputs()),
            outputs=tuple(_spec(a) for a in self.session.get_outputs()),
        )
        super().__init__(io, device, precision, max_batch=max_batch)
        self.path = None if isinstance(model, bytes) else Path(source)
        self.providers = self.session.get_providers()

    @staticmethod
    def _check_precision(model, precision: str) -> None:
        """The graph's own precision must be the one asked for (ONNX Runtime never converts)."""
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {PRECISIONS}, got '{precision}'")
        if isinstance(model, bytes):
            if precision != "fp32":
                raise InvalidInputError("serialized ONNX bytes run as FP32: pass the FP16 graph's file path")
            return
        if not os.path.isfile(model):
            raise WeightsError(f"ONNX file '{model}' does not exist: export it with `fhsdk export`")
        found = graph_precision(model)
        if found != precision:
            raise InvalidInputError(
                f"'{model}' is an {found.upper()} graph but precision='{precision}' was asked for: "
                f"use create_backend('onnxruntime', ..., precision='{precision}'), which writes the "
                f"FP16 graph of an FP32 file (fhsdk.runtime.export.export_fp16)"
            )

    @staticmethod
    def _providers(ort, device: str) -> list[str]:
        if device == "cpu":
            return ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError(
                    f"ONNX Runtime here has no CUDAExecutionProvider (available: "
                    f"{ort.get_available_providers()}): install `onnxruntime-gpu` matching your CUDA, "
                    f"or use device='cpu'"
                )
            index = int(device.split(":")[1]) if ":" in device else 0
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        raise InvalidInputError(f"device '{device}' is not supported: use 'cpu' or 'cuda'")

    def _run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        arrays = {name: np.ascontiguousarray(to_numpy(value)) for name, value in feeds.items()}
        results = self.session.run(self.io.output_names, arrays)
        return dict(zip(self.io.output_names, results))
