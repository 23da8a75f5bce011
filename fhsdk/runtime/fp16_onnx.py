"""Mixed-precision (FP16) ONNX graphs: the conversion and the facts about a graph's precision.

TensorRT 11 builds strongly typed networks only: the precision of every layer comes from the ONNX
graph, not from a builder flag. So FP16 deployment starts here, for every runtime: the FP32 export
is rewritten with float16 weights and activations (ONNX Runtime's float16 converter), keeping the
graph's inputs and outputs float32 (the backend interface does not change) and keeping the ops in
`FP32_OPS` in float32 (reductions, softmax and exponentials lose range or accuracy in float16).

`fhsdk.runtime.export.export_fp16` compares every conversion with the FP32 graph and keeps more
op types in FP32 (`FP32_OP_LEVELS`) until it passes; the chosen list is recorded in the file's
metadata (`fhsdk.fp32_ops`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import onnx

from fhsdk.errors import BackendUnavailableError, WeightsError
from fhsdk.files import atomic_write_bytes

# Kept in FP32 always: reductions, normalising and transcendental ops, where float16's range
# (max 65504) or 11-bit mantissa hurt. Everything else (Conv, Gemm, activations) runs FP16.
FP32_OPS: tuple[str, ...] = (
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceSum",
    "ReduceL2",
    "ReduceSumSquare",
    "LpNormalization",
    "Exp",
    "Log",
    "Pow",
    "Sqrt",
    "Reciprocal",
    "Div",
    "InstanceNormalization",
    "LayerNormalization",
)
# Tried in order when a graph fails parity: then also elementwise sums and normalisations, then
# everything but convolutions and matrix products.
FP32_OP_LEVELS: tuple[tuple[str, ...], ...] = (
    FP32_OPS,
    FP32_OPS + ("Add", "Sub", "Mul", "BatchNormalization"),
    FP32_OPS
    + (
        "Add",
        "Sub",
        "Mul",
        "BatchNormalization",
        "Resize",
        "AveragePool",
        "GlobalAveragePool",
        "PRelu",
        "LeakyRelu",
        "Relu",
        "Concat",
    ),
)
PRECISION_KEY = "fhsdk.precision"
FP32_OPS_KEY = "fhsdk.fp32_ops"
SOURCE_KEY = "fhsdk.fp32_source_sha256"


def graph_precision(onnx_path: str | os.PathLike) -> str:
    """'fp16' when the graph computes in float16 anywhere (weights or casts), else 'fp32'."""
    try:
        proto = onnx.load(os.fspath(onnx_path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError, OSError: any unreadable file
        raise WeightsError(
            f"'{onnx_path}' is not a readable ONNX file ({error}): re-export it with `fhsdk export`"
        ) from error
    f16 = onnx.TensorProto.FLOAT16
    if any(init.data_type == f16 for init in proto.graph.initializer):
        return "fp16"
    for node in proto.graph.node:
        if node.op_type == "Cast" and any(a.name == "to" and a.i == f16 for a in node.attribute):
            return "fp16"
    return "fp32"


def convert_to_fp16(src: str | os.PathLike, dst: str | os.PathLike, fp32_ops: Sequence[str] = FP32_OPS) -> Path:
    """Write the mixed-precision version of an FP32 ONNX file; IO stays float32."""
    try:  # the converter ships with ONNX Runtime, an optional dependency (fhsdk[onnx])
        from onnxruntime.transformers import float16
    except ImportError as error:
        raise BackendUnavailableError(
            "FP16 ONNX graphs are written with ONNX Runtime's float16 converter: pip install onnxruntime"
        ) from error

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise WeightsError(f"ONNX file '{src}' does not exist: export it with `fhsdk export`")
    proto = onnx.load(os.fspath(src))
    blocked = sorted(set(fp32_ops) | set(float16.DEFAULT_OP_BLOCK_LIST))  # + ops with no float16 form
    converted = float16.convert_float_to_float16(proto, keep_io_types=True, op_block_list=blocked)
    metadata = {p.key: p.value for p in proto.metadata_props}
    metadata.update(
        {
            PRECISION_KEY: "fp16",
            FP32_OPS_KEY: ",".join(fp32_ops),
            SOURCE_KEY: hashlib.sha256(src.read_bytes()).hexdigest(),
        }
    )
    _sort_topologically(converted.graph)
    del converted.metadata_props[:]
    onnx.helper.set_model_props(converted, metadata)
    onnx.checker.check_model(converted)
    atomic_write_bytes(dst, converted.SerializeToString())  # a reader never sees half a graph
    return dst


def fp16_path_for(fp32_path: str | os.PathLike) -> Path:
    """Where the FP16 graph of an FP32 file is cached: beside it, named by the source's digest."""
    fp32_path = Path(fp32_path)
    digest = hashlib.sha256(fp32_path.read_bytes()).hexdigest()[:16]
    return fp32_path.with_name(f"{fp32_path.stem}-fp16-{digest}.onnx")


def _sort_topologically(graph) -> None:
    """Reorder nodes so each follows its producers (the converter appends its input casts last;
    ONNX's checker and TensorRT's parser need producers first). Stable for already-ordered nodes."""
    available = {value.name for value in graph.input} | {init.name for init in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise WeightsError("the FP16 graph has a cycle or a dangling input; re-export the FP32 file")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [node for node in pending if node not in ready]
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
