"""Build TensorRT engines from ONNX, as `trtexec --minShapes/--optShapes/--maxShapes --stronglyTyped` does.

Written against the documented TensorRT 10.x and 11.x Python APIs. TensorRT 11 removed the weak
typing API (BuilderFlag.FP16, OBEY_PRECISION_CONSTRAINTS, platform_has_fast_fp16): every network is
strongly typed, each layer running in the type the ONNX graph gives it. fhsdk builds the same way
on both: FP16 lives in the graph (fp16_onnx.py writes a parity-checked mixed-precision ONNX), and
the network is created with NetworkDefinitionCreationFlag.STRONGLY_TYPED where that flag exists
(10.x needs it; 11.x accepts or drops it, strong typing being always on). Engines go to the engine
cache keyed by everything that changes them (engine_cache.py); a valid cached engine is reused.
Not run on a GPU yet: tests/test_tensorrt_api.py drives this code through a stand-in module that
follows each version's documented API, and tests/test_tensorrt_plan.py covers the pure parts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from onnx import helper

from fhsdk.errors import BackendUnavailableError, InvalidInputError, WeightsError
from fhsdk.runtime.base import TensorSpec
from fhsdk.runtime.engine_cache import EngineCacheError, EngineKey, cache_path, read_engine, write_engine
from fhsdk.runtime.fp16_onnx import graph_precision
from fhsdk.runtime.presets import get_preset
from fhsdk.runtime.trt_plan import OptimizationProfile, Shape, compute_profile

logger = logging.getLogger(__name__)

DEFAULT_WORKSPACE_MIB = 4096


SUPPORTED_MAJORS = (10, 11)


def import_tensorrt():
    """The tensorrt module (10.x or 11.x), or BackendUnavailableError saying how to get it.

    Logs which major version it found; `tensorrt_major(trt)` returns it.
    """
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BackendUnavailableError(
            "TensorRT is not installed: on a machine with an NVIDIA GPU and driver run "
            "`pip install tensorrt` (10.x or 11.x), or use backend='onnxruntime' or 'torch'"
        ) from error
    major = tensorrt_major(trt)
    if major < SUPPORTED_MAJORS[0]:
        raise BackendUnavailableError(
            f"TensorRT {trt.__version__} is too old: fhsdk uses the name-based API of TensorRT "
            f"{' and '.join(map(str, SUPPORTED_MAJORS))}; run `pip install -U tensorrt`"
        )
    if major > SUPPORTED_MAJORS[-1]:
        logger.warning(
            "TensorRT %s is newer than the %s.x API fhsdk was written against", trt.__version__, SUPPORTED_MAJORS[-1]
        )
    logger.info(
        "found TensorRT %s (major %d: %s)",
        trt.__version__,
        major,
        "strong typing only" if major >= 11 else "strongly typed networks by flag",
    )
    return trt


def tensorrt_major(trt) -> int:
    """The major version of an imported tensorrt module ('11.3.0' -> 11)."""
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError as error:
        raise BackendUnavailableError(f"cannot read TensorRT's version '{trt.__version__}'") from error


def strongly_typed_flags(trt) -> int:
    """create_network flags for a strongly typed network on this TensorRT.

    10.x: the STRONGLY_TYPED bit (without it FP16 would need the weak-typing flags). 11.x: networks
    are always strongly typed; the flag is passed when the module still lists it, else 0.
    """
    flag = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED", None)
    if flag is None:
        if tensorrt_major(trt) < 11:
            raise BackendUnavailableError(
                f"TensorRT {trt.__version__} has no strongly typed networks: fhsdk needs 10.0 or newer"
            )
        return 0
    return 1 << int(flag)


def cuda_device_identity(device_index: int = 0) -> tuple[str, tuple[int, int]]:
    """(GPU name, compute capability) of a CUDA device, via PyTorch."""
    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "TensorRT needs a CUDA GPU and PyTorch sees none: run on a GPU machine with a CUDA build "
            "of PyTorch, or use backend='onnxruntime' on CPU"
        )
    return torch.cuda.get_device_name(device_index), tuple(torch.cuda.get_device_capability(device_index))


def onnx_input_specs(onnx_path: str | os.PathLike) -> tuple[TensorSpec, ...]:
    """Graph inputs of an ONNX file as TensorSpecs (symbolic dimensions -> -1)."""
    proto = onnx.load(os.fspath(onnx_path), load_external_data=False)
    initializers = {init.name for init in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
        specs.append(TensorSpec(value.name, helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name, dims))
    return tuple(specs)


def default_profile(
    onnx_path: str | os.PathLike,
    model_name: str | None = None,
    batch_range: tuple[int, int, int] | None = None,
    spatial_range=None,
) -> OptimizationProfile:
    """Profile for an ONNX file from its preset's defaults (batch and, for P-Net/generators, H, W)."""
    specs = onnx_input_specs(onnx_path)
    preset = get_preset(model_name) if model_name else None
    batch = batch_range or (preset.batch_range if preset else (1, 8, 32))
    spatial = spatial_range or (preset.spatial_range if preset else None)
    per_input = {s.name: spatial for s in specs if spatial is not None and 2 in s.dynamic_axes}
    return compute_profile(specs, batch, per_input)


@dataclass(frozen=True)
class BuildResult:
    engine_path: Path
    key: EngineKey
    from_cache: bool
    seconds: float


def engine_key(
    trt,
    onnx_bytes: bytes,
    profile: OptimizationProfile,
    precision: str,
    workspace_mib: int,
    device_index: int = 0,
) -> EngineKey:
    gpu_name, capability = cuda_device_identity(device_index)
    return EngineKey(
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        tensorrt_version=trt.__version__,
        gpu_name=gpu_name,
        compute_capability=capability,
        precision=precision,
        profile=profile,
        builder_options=(("workspace_mib", int(workspace_mib)), ("strongly_typed", 1)),
    )


def build_engine(
    onnx_path: str | os.PathLike,
    min_shapes: Mapping[str, Shape],
    opt_shapes: Mapping[str, Shape],
    max_shapes: Mapping[str, Shape],
    *,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    output: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    force: bool = False,
    device_index: int = 0,
) -> BuildResult:
    """Build (or fetch from the cache) a strongly typed TensorRT engine for an ONNX file with one
    profile, on CUDA device `device_index`. The engine's precision is the graph's: give the FP16
    graph (fp16_onnx.mixed_fp16_onnx) for an FP16 engine.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise WeightsError(f"ONNX file '{onnx_path}' does not exist: export it with `fhsdk export`")
    onnx_bytes = onnx_path.read_bytes()
    precision = graph_precision(onnx_path)  # the graph's layer types (FP32 ops kept) are in its digest
    profile = OptimizationProfile.from_shapes(min_shapes, opt_shapes, max_shapes)
    trt = import_tensorrt()
    key = engine_key(trt, onnx_bytes, profile, precision, workspace_mib, device_index)
    path = Path(output) if output else cache_path(key, stem=onnx_path.stem, root=cache_root)
    if path.is_file() and not force:
        try:
            read_engine(path, key)
            logger.info("engine cache hit: %s", path)
            return BuildResult(path, key, True, 0.0)
        except EngineCacheError as error:
            logger.warning("rebuilding engine: %s", error)

    start = time.perf_counter()
    with torch.cuda.device(device_index):  # the builder times its tactics on the current device
        serialized = _build_serialized(trt, onnx_path, onnx_bytes, profile, workspace_mib)
    write_engine(path, key, bytes(serialized))
    seconds = time.perf_counter() - start
    logger.info("built %s engine %s in %.1f s", key.precision, path, seconds)
    return BuildResult(path, key, False, seconds)


def _build_serialized(trt, onnx_path: Path, onnx_bytes: bytes, profile: OptimizationProfile, workspace_mib: int):
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(strongly_typed_flags(trt))
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise WeightsError(f"TensorRT cannot parse '{onnx_path}': {errors}")

    network_inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    unprofiled = [n for n, shape in network_inputs.items() if -1 in shape and n not in profile.names()]
    unknown = [n for n in profile.names() if n not in network_inputs]
    if unprofiled or unknown:
        raise InvalidInputError(
            f"shapes must cover the dynamic inputs {sorted(network_inputs)} of '{onnx_path}': "
            f"missing {unprofiled}, unknown {unknown}"
        )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    trt_profile = builder.create_optimization_profile()
    for name, low, opt, high in profile.shapes:
        trt_profile.set_shape(name, low, opt, high)
    if config.add_optimization_profile(trt_profile) < 0:
        raise InvalidInputError(f"TensorRT refused the optimisation profile {profile.to_dict()} for '{onnx_path}'")

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(
            f"TensorRT failed to build an engine for '{onnx_path}' (see the TensorRT log above); "
            f"try a larger --workspace-mib or smaller --max-shapes"
        )
    return serialized
