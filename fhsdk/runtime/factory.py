"""`create_backend`: one factory for every runtime, and the 'auto' choice among them.

`model_or_path` may be an nn.Module (with `io=` or `model_name=` naming its preset), a preset name
('dlib_resnet_v1', 'mtcnn_pnet', ...), an .onnx file, or an fhsdk .engine file. ONNX-based kinds
given a module export it once to the cache (<cache>/onnx/<name>-<weights hash>.onnx).

'auto' picks, in order: TensorRT (importable and a CUDA GPU), ONNX Runtime's CUDA provider,
PyTorch CUDA, then on CPU the order in CPU_ORDER, which was decided by measurement (see
docs/RUNTIME.md and benchmarks/bench_models.py). The reason for each choice is logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from fhsdk.errors import BackendUnavailableError, ConfigError
from fhsdk.runtime.base import Backend, ModelIO
from fhsdk.runtime.export import export_fp16, export_onnx, export_preset, read_metadata, state_dict_sha256
from fhsdk.runtime.fp16_onnx import graph_precision
from fhsdk.runtime.onnxruntime_backend import OnnxRuntimeBackend
from fhsdk.runtime.presets import get_preset, list_presets
from fhsdk.runtime.tensorrt_backend import TensorRTBackend
from fhsdk.runtime.torch_backend import TorchBackend
from fhsdk.weights import cache_dir

logger = logging.getLogger(__name__)

KINDS = ("torch", "onnxruntime", "tensorrt", "auto")

# CPU order for 'auto', from benchmarks/bench_models.py on the development machine (one thread):
# ONNX Runtime beat PyTorch eager in 31 of 35 (model, batch) pairs, 1.8-6x on the recogniser and
# MTCNN nets (docs/RUNTIME.md has the table).
CPU_ORDER = ("onnxruntime", "torch")
CPU_ORDER_REASON = "ONNX Runtime was faster than PyTorch eager in 31 of 35 model/batch pairs measured"


# FP16 on GPUs (tensor cores; parity per model in docs/RUNTIME.md), FP32 on CPUs, where float16
# arithmetic is emulated and slower.
DEFAULT_PRECISION = {"cuda": "fp16", "cpu": "fp32"}


def default_precision(device: str) -> str:
    """The precision a backend runs at on `device` ('cpu', 'cuda', 'cuda:N') unless told otherwise."""
    return DEFAULT_PRECISION.get(device.split(":")[0], "fp32")


def _tensorrt_status() -> str | None:
    """None when TensorRT can run here, else why not."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (pip install tensorrt, on a machine with an NVIDIA GPU)"
    if not torch.cuda.is_available():
        return "TensorRT is installed but PyTorch sees no CUDA GPU (its device buffers are torch CUDA tensors)"
    return None


def _ort_status(device: str) -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return "ONNX Runtime is not installed (pip install onnxruntime)"
    if device == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "ONNX Runtime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
        if not torch.cuda.is_available():
            return "no CUDA GPU is visible"
    return None


def _torch_status(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA GPU"
    return None


def auto_candidates() -> list[tuple[str, str, str | None]]:
    """(kind, device, reason it is unavailable or None) in 'auto' preference order."""
    candidates = [
        ("tensorrt", "cuda", _tensorrt_status()),
        ("onnxruntime", "cuda", _ort_status("cuda")),
        ("torch", "cuda", _torch_status("cuda")),
    ]
    for kind in CPU_ORDER:
        candidates.append((kind, "cpu", _ort_status("cpu") if kind == "onnxruntime" else None))
    return candidates


def choose_auto(accepts_onnx: bool = True, accepts_module: bool = True, device: str | None = None) -> tuple[str, str]:
    """The (kind, device) 'auto' picks here (only on `device`'s type if given), logging why."""
    skipped = []
    for kind, candidate_device, reason in auto_candidates():
        if device is not None and candidate_device != device.split(":")[0]:
            continue
        if kind == "torch" and not accepts_module:
            reason = reason or "the torch backend needs the nn.Module, not an ONNX file"
        if kind != "torch" and not accepts_onnx:
            reason = reason or "no ONNX file and no preset to export one"
        if reason is None:
            why = "; ".join(skipped) or "it is the first choice"
            if candidate_device == "cpu":
                why += f"; CPU order {'/'.join(CPU_ORDER)} is by measured speed ({CPU_ORDER_REASON})"
            logger.info("backend 'auto' chose %s on %s (%s)", kind, candidate_device, why)
            return kind, device or candidate_device
        skipped.append(f"not {kind}/{candidate_device}: {reason}")
    raise BackendUnavailableError("no backend can run here: " + "; ".join(skipped))


def _is_module(obj: Any) -> bool:
    return isinstance(obj, torch.nn.Module)


def _resolve_source(model_or_path: Any, io: ModelIO | None, model_name: str | None):
    """(module or None, file path or None, io or None, model name or None)."""
    if _is_module(model_or_path):
        if io is None and model_name is not None:
            io = get_preset(model_name).io
        return model_or_path, None, io, model_name
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        if path.is_file():
            return None, path, io, model_name
        if str(model_or_path) in list_presets():
            preset = get_preset(str(model_or_path))
            return preset.build(), None, io or preset.io, preset.name
        raise ConfigError(
            f"'{model_or_path}' is neither an existing .onnx/.engine file nor a model preset "
            f"({', '.join(list_presets())})"
        )
    raise ConfigError(
        f"create_backend needs an nn.Module, a preset name or a file path, got {type(model_or_path).__name__}"
    )


def exported_onnx(module: torch.nn.Module, model_name: str | None, io: ModelIO | None) -> Path:
    """The cached ONNX export of a module (exported and parity-checked on first use)."""
    if model_name is None and io is None:
        raise ConfigError("to run a module on an ONNX-based backend pass model_name= (a preset) or io=")
    stem = model_name or type(module).__name__
    path = cache_dir() / "onnx" / f"{stem}-{state_dict_sha256(module)[:16]}.onnx"
    if path.is_file():
        return path
    if model_name is not None and io is None:
        report = export_preset(model_name, path, model=module)
    else:
        axes = {s.name: {a: f"{s.name}_d{a}" for a in s.dynamic_axes} for s in io.inputs + io.outputs if s.dynamic_axes}
        report = export_onnx(
            module, io.example_inputs(batch=1), path, io.input_names, io.output_names, axes, model_name=stem
        )
    if not report.passed:
        path.unlink(missing_ok=True)
        raise BackendUnavailableError(f"the ONNX export of {stem} does not match PyTorch:\n{report.summary()}")
    return path


def create_backend(
    kind: str,
    model_or_path: Any,
    device: str | None = None,
    precision: str | None = None,
    *,
    io: ModelIO | None = None,
    model_name: str | None = None,
    **options: Any,
) -> Backend:
    """Build a backend of `kind` ('torch', 'onnxruntime', 'tensorrt' or 'auto').

    `device` defaults to 'cuda' for TensorRT, the chosen device for 'auto', else 'cpu'.
    `precision` defaults to DEFAULT_PRECISION of the device type: 'fp16' on CUDA, 'fp32' on CPU.
    Extra `options` go to the backend's constructor (e.g. intra_op_threads, cuda_graph_batch,
    max_batch, batch_range, spatial_range).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown backend '{kind}': choose one of {', '.join(KINDS)}")
    module, path, io, model_name = _resolve_source(model_or_path, io, model_name)
    if path is not None and model_name is None and path.suffix == ".onnx":
        model_name = read_metadata(path).get("fhsdk.model_name")
    if kind == "auto":
        can_export = module is not None and (io is not None or model_name is not None)
        kind, device = choose_auto(path is not None or can_export, module is not None, device)
    device = device or ("cuda" if kind == "tensorrt" else "cpu")
    precision = precision or default_precision(device)

    if kind == "torch":
        if module is None:
            raise ConfigError(f"the torch backend runs nn.Modules, not '{path}': pass the module or a preset name")
        if io is None:
            raise ConfigError("the torch backend needs the IO names: pass model_name= (a preset) or io=")
        return TorchBackend(module, io, device=device, precision=precision, **options)

    if module is not None:
        path = exported_onnx(module, model_name, io)
    if path.suffix == ".onnx" and precision == "fp16" and graph_precision(path) == "fp32":
        path = export_fp16(path).path  # FP16 lives in the graph for ONNX Runtime and TensorRT alike
    if kind == "onnxruntime":
        if path.suffix == ".engine":
            raise ConfigError(f"'{path}' is a TensorRT engine: use backend='tensorrt'")
        return OnnxRuntimeBackend(path, device=device, precision=precision, **options)

    if path.suffix == ".engine":
        return TensorRTBackend(path, device=device, **options)
    return TensorRTBackend.from_onnx(path, device=device, precision=precision, model_name=model_name, **options)
