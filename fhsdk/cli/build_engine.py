"""`fhsdk build-engine`: a TensorRT engine from ONNX, like trtexec, into the engine cache."""

from __future__ import annotations

import argparse

import fhsdk.detect  # noqa: F401  (registers the detectors' deployment presets)
import fhsdk.models  # noqa: F401  (registers the recogniser's and generators')
from fhsdk.errors import InvalidInputError
from fhsdk.runtime.build import DEFAULT_WORKSPACE_MIB, build_engine, default_profile
from fhsdk.runtime.export import export_fp16, read_metadata
from fhsdk.runtime.fp16_onnx import graph_precision
from fhsdk.runtime.trt_plan import format_shapes, parse_shapes

HELP = "build a TensorRT engine from ONNX (like trtexec)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", help="ONNX file written by `fhsdk export`")
    parser.add_argument(
        "--min-shapes", help="trtexec-style NAME:1x3x150x150[,...] (default: the model preset's profile)"
    )
    parser.add_argument("--opt-shapes", help="as --min-shapes")
    parser.add_argument("--max-shapes", help="as --min-shapes")
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="build an FP32 engine (default: FP16, from the parity-checked FP16 graph of an FP32 file)",
    )
    parser.add_argument("--workspace-mib", type=int, default=DEFAULT_WORKSPACE_MIB)
    parser.add_argument("-o", "--output", help="engine file to write (default: the engine cache)")
    parser.add_argument("--cache-dir", help="engine cache folder (default: $FHSDK_CACHE/engines)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a valid cached engine exists")


def run(args: argparse.Namespace) -> int:
    """`fhsdk build-engine`: prints the engine path; returns the exit code."""
    given = [args.min_shapes, args.opt_shapes, args.max_shapes]
    if any(given) and not all(given):
        raise InvalidInputError("give all of --min-shapes, --opt-shapes and --max-shapes, or none")
    if all(given):
        shapes = [parse_shapes(text) for text in given]
    else:
        profile = default_profile(args.onnx, read_metadata(args.onnx).get("fhsdk.model_name"))
        shapes = [{n: r[i] for n, *r in profile.shapes} for i in range(3)]
    onnx_path = args.onnx
    if not args.fp32 and graph_precision(onnx_path) == "fp32":
        report = export_fp16(onnx_path)
        print(report.summary())
        onnx_path = report.path
    result = build_engine(
        onnx_path,
        *shapes,
        workspace_mib=args.workspace_mib,
        output=args.output,
        cache_root=args.cache_dir,
        force=args.force,
    )
    print(f"{'cached' if result.from_cache else 'built'} {result.key.precision} engine: {result.engine_path}")
    print(f"  min {format_shapes(shapes[0])}  opt {format_shapes(shapes[1])}  max {format_shapes(shapes[2])}")
    return 0
