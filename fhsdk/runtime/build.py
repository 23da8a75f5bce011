"""Build TensorRT engines from ONNX, as `trtexec --minShapes/--optShapes/--maxShapes --fp16` does.

Written against the TensorRT 10 Python API (networks are always explicit-batch there, so
create_network takes no EXPLICIT_BATCH flag). Engines go to the engine cache keyed by everything
that changes them (engine_cache.py); a valid cached engine is reused instead of rebuilt.
Not run on the development machine (no TensorRT, no GPU): the pure parts it relies on (profiles,
keys, cache format, layer selection) are tested in tests/test_tensorrt_plan.py.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from fhsdk.errors import BackendUnavailableError, InvalidInputError, WeightsError
from fhsdk.runtime.base import TensorSpec
from fhsdk.runtime.engine_cache import EngineCacheError, EngineKey, cache_path, read_engine, write_engine
from fhsdk.runtime.trt_plan import (
    OptimizationProfile,
    Shape,
    compute_profile,
    format_shapes,
    parse_shapes,
    select_pinned_layers,
)

logger = logging.getLogger(__name__)

DEFAULT_WORKSPACE_MIB = 4096


def import_tensorrt():
    """The tensorrt module (10.x or later), or BackendUnavailableError saying how to get it."""
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BackendUnavailableError(
            "TensorRT is not installed: on a machine with an NVIDIA GPU and driver run "
            "`pip install tensorrt` (10.x), or use backend='onnxruntime' or 'torch'"
        ) from error
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise BackendUnavailableError(
            f"TensorRT {trt.__version__} is too old: fhsdk uses the TensorRT 10 name-based API; "
            f"run `pip install -U tensorrt`"
        )
    return trt


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
    import onnx
    from onnx import helper

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


def default_profile(onnx_path: str | os.PathLike, model_name: str | None = None,
                    batch_range: tuple[int, int, int] | None = None,
                    spatial_range=None) -> OptimizationProfile:
    """Profile for an ONNX file from its preset's defaults (batch and, for P-Net/generators, H, W)."""
    from fhsdk.runtime.presets import get_preset

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
    onnx_bytes: bytes,
    profile: OptimizationProfile,
    fp16: bool,
    pin_fp32_layers: Sequence[str],
    pin_fp32_layer_types: Sequence[str],
    workspace_mib: int,
    device_index: int = 0,
) -> EngineKey:
    trt = import_tensorrt()
    gpu_name, capability = cuda_device_identity(device_index)
    return EngineKey(
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        tensorrt_version=trt.__version__,
        gpu_name=gpu_name,
        compute_capability=capability,
        precision="fp16" if fp16 else "fp32",
        profile=profile,
        pinned_layers=tuple(pin_fp32_layers),
        pinned_layer_types=tuple(pin_fp32_layer_types),
        builder_options=(("workspace_mib", int(workspace_mib)),),
    )


def build_engine(
    onnx_path: str | os.PathLike,
    min_shapes: Mapping[str, Shape],
    opt_shapes: Mapping[str, Shape],
    max_shapes: Mapping[str, Shape],
    fp16: bool = True,
    *,
    pin_fp32_layers: Sequence[str] = (),
    pin_fp32_layer_types: Sequence[str] = (),
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    output: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    force: bool = False,
    device_index: int = 0,
) -> BuildResult:
    """Build (or fetch from the cache) a TensorRT engine for an ONNX file with one profile.

    `pin_fp32_layers` / `pin_fp32_layer_types` (TensorRT layer names / LayerType names such as
    'NORMALIZATION') are forced to FP32 under OBEY_PRECISION_CONSTRAINTS when FP16 loses parity.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise WeightsError(f"ONNX file '{onnx_path}' does not exist: export it with `fhsdk export`")
    onnx_bytes = onnx_path.read_bytes()
    profile = OptimizationProfile.from_shapes(min_shapes, opt_shapes, max_shapes)
    key = engine_key(onnx_bytes, profile, fp16, pin_fp32_layers, pin_fp32_layer_types, workspace_mib, device_index)
    path = Path(output) if output else cache_path(key, stem=onnx_path.stem, root=cache_root)
    if path.is_file() and not force:
        try:
            read_engine(path, key)
            logger.info("engine cache hit: %s", path)
            return BuildResult(path, key, True, 0.0)
        except EngineCacheError as error:
            logger.warning("rebuilding engine: %s", error)

    trt = import_tensorrt()
    start = time.perf_counter()
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
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
    if fp16:
        if not builder.platform_has_fast_fp16:
            logger.warning("this GPU has no fast FP16; the FP16 engine may be slower than FP32")
        config.set_flag(trt.BuilderFlag.FP16)
    if pin_fp32_layers or pin_fp32_layer_types:
        _pin_layers_fp32(trt, network, config, pin_fp32_layers, pin_fp32_layer_types)

    trt_profile = builder.create_optimization_profile()
    for name, low, opt, high in profile.shapes:
        trt_profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(trt_profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(
            f"TensorRT failed to build an engine for '{onnx_path}' (see the TensorRT log above); "
            f"try a larger --workspace-mib or smaller --max-shapes"
        )
    write_engine(path, key, bytes(serialized))
    seconds = time.perf_counter() - start
    logger.info("built %s engine %s in %.1f s", key.precision, path, seconds)
    return BuildResult(path, key, False, seconds)


def _pin_layers_fp32(trt, network, config, names: Sequence[str], types: Sequence[str]) -> list[str]:
    """Force the chosen layers to compute and output FP32; returns their names."""
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    selected = set(select_pinned_layers([(layer.name, layer.type.name) for layer in layers], names, types))
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    for layer in layers:
        if layer.name in selected:
            layer.precision = trt.float32
            for index in range(layer.num_outputs):
                layer.set_output_type(index, trt.float32)
    logger.info("pinned %d layers to FP32", len(selected))
    return sorted(selected)


# -- CLI: `fhsdk build-engine` ---------------------------------------------------------------------


def add_build_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", help="ONNX file written by `fhsdk export`")
    parser.add_argument("--min-shapes", help="trtexec-style NAME:1x3x150x150[,...] (default: the model preset's profile)")
    parser.add_argument("--opt-shapes", help="as --min-shapes")
    parser.add_argument("--max-shapes", help="as --min-shapes")
    parser.add_argument("--fp32", action="store_true", help="build FP32 (default FP16)")
    parser.add_argument("--pin-fp32-layers", default="", help="comma-separated TensorRT layer names to keep FP32")
    parser.add_argument("--pin-fp32-types", default="", help="comma-separated LayerType names to keep FP32, e.g. NORMALIZATION")
    parser.add_argument("--workspace-mib", type=int, default=DEFAULT_WORKSPACE_MIB)
    parser.add_argument("-o", "--output", help="engine file to write (default: the engine cache)")
    parser.add_argument("--cache-dir", help="engine cache folder (default: $FHSDK_CACHE/engines)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a valid cached engine exists")


def run_build_engine(args: argparse.Namespace) -> int:
    """`fhsdk build-engine`: prints the engine path; returns the exit code."""
    from fhsdk.runtime.export import read_metadata

    given = [args.min_shapes, args.opt_shapes, args.max_shapes]
    if any(given) and not all(given):
        raise InvalidInputError("give all of --min-shapes, --opt-shapes and --max-shapes, or none")
    if all(given):
        shapes = [parse_shapes(text) for text in given]
    else:
        profile = default_profile(args.onnx, read_metadata(args.onnx).get("fhsdk.model_name"))
        shapes = [{n: r[i] for n, *r in profile.shapes} for i in range(3)]
    result = build_engine(
        args.onnx, *shapes, fp16=not args.fp32,
        pin_fp32_layers=[s for s in args.pin_fp32_layers.split(",") if s],
        pin_fp32_layer_types=[s for s in args.pin_fp32_types.split(",") if s],
        workspace_mib=args.workspace_mib, output=args.output, cache_root=args.cache_dir, force=args.force,
    )
    print(f"{'cached' if result.from_cache else 'built'} {result.key.precision} engine: {result.engine_path}")
    print(f"  min {format_shapes(shapes[0])}  opt {format_shapes(shapes[1])}  max {format_shapes(shapes[2])}")
    return 0
