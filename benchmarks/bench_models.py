"""Latency and throughput of every fhsdk network on every available backend, against a FLOP floor.

For each model, backend and batch size: median latency of one `backend.run` (inputs already in
host memory; host<->device copies included for CUDA backends, no pre/post-processing), throughput
(samples/s), FLOPs per sample (conv + linear, counted with forward hooks), achieved GFLOP/s and the
ratio latency / floor, where floor = FLOPs / peak. The peak is *measured* on this machine: the
FLOP/s of a large square matmul (float32 on CPU, float16 on GPU) with the same thread count,
so the ratio says how far each network runs from the machine's best dense arithmetic.

Batches grow through --batches until one run takes longer than --max-seconds; what was run is
what the table shows. Prints markdown and writes JSON.

    python benchmarks/bench_models.py --threads 2 --out bench_models.json
    python benchmarks/bench_models.py --models dlib_resnet_v1 mtcnn_rnet --batches 1 8 32
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import fhsdk.detect  # noqa: F401  (registers the detectors' deployment presets)
import fhsdk.models  # noqa: F401  (registers the recogniser's and generators')
from fhsdk.runtime import create_backend, export_preset, get_preset
from fhsdk.runtime.flops import count_flops

DEFAULT_MODELS = ["dlib_resnet_v1", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "edsr", "sicnn", "srgan", "dsnet", "rrdb"]
# P-Net runs per pyramid level: benchmark it at one mid-size level of a 720p frame.
INPUT_OVERRIDES = {"mtcnn_pnet": (3, 216, 384)}


def measure_peak_flops(device: str, threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Best achieved FLOP/s of a size x size matmul (float32 on CPU, float16 on CUDA).

    The best of several runs, like the best-of latencies it is compared with: on a shared
    machine the best run is the one least disturbed by other processes."""
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 2):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times[2:])


def measure_ort_peak_flops(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of a float32 size x size MatMul in ONNX Runtime (its own MLAS GEMM)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {n: np.random.default_rng(0).random((size, size), dtype=np.float32) for n in ("a", "b")}
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times[2:])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def backend_configs(threads: int) -> list[dict]:
    """(kind, device, precision) to run here: CPU always; CUDA and TensorRT where available."""
    configs = [
        {"kind": "torch", "device": "cpu", "precision": "fp32", "options": {}},
        {"kind": "onnxruntime", "device": "cpu", "precision": "fp32", "options": {"intra_op_threads": threads}},
    ]
    if torch.cuda.is_available():
        configs += [
            {"kind": "torch", "device": "cuda", "precision": "fp32", "options": {}},
            {"kind": "torch", "device": "cuda", "precision": "fp16", "options": {}},
        ]
        try:
            import tensorrt  # noqa: F401

            configs.append({"kind": "tensorrt", "device": "cuda", "precision": "fp16", "options": {}})
        except ImportError:
            pass
    return configs


def time_run(backend, feeds, device: str, repeats: int, max_seconds: float) -> list[float]:
    backend.run(feeds)  # warm-up (allocations, lazy init, ORT's first-run planning)
    times = []
    deadline = time.perf_counter() + max_seconds * repeats
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        backend.run(feeds)
        _sync(device)
        times.append(time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return times


def bench_model(name: str, configs, batches, threads, peaks, args, workdir: Path) -> list[dict]:
    preset = get_preset(name)
    model = preset.build()
    sample_shape = INPUT_OVERRIDES.get(name, preset.io.example_shapes["image"][1:])
    flops = count_flops(model, torch.zeros(1, *sample_shape))["flops"]
    report = export_preset(name, workdir / f"{name}.onnx", model=model, check_batches=(1, 2))
    if not report.passed:
        print(
            f"WARNING: {name}'s ONNX export fails parity; its ONNX timings are of a wrong graph:\n{report.summary()}",
            file=sys.stderr,
        )
    onnx_path = report.path
    rows = []
    for config in configs:
        kind, device, precision = config["kind"], config["device"], config["precision"]
        source = model if kind == "torch" else onnx_path
        options = dict(config["options"])
        if kind == "tensorrt":
            options["batch_range"] = (1, max(batches) // 2 or 1, max(batches))
            if preset.spatial_range:
                options["spatial_range"] = (preset.spatial_range[0], sample_shape[1:], preset.spatial_range[2])
        backend = create_backend(
            kind, source, device=device, precision=precision, io=preset.io if kind == "torch" else None, **options
        )
        for batch in batches:
            feeds = {"image": np.random.default_rng(batch).random((batch, *sample_shape)).astype(np.float32)}
            times = time_run(backend, feeds, device, args.repeats, args.max_seconds)
            latency, best = statistics.median(times), min(times)
            peak = peaks["cuda" if device.startswith("cuda") else "cpu"]
            floor = flops * batch / peak
            rows.append(
                {
                    "model": name,
                    "backend": kind,
                    "device": device,
                    "precision": precision,
                    "batch": batch,
                    "input": list(sample_shape),
                    "runs": len(times),
                    "latency_ms": 1e3 * latency,
                    "best_ms": 1e3 * best,
                    "throughput_per_s": batch / latency,
                    "gflops_per_sample": flops / 1e9,
                    "achieved_gflops_per_s": flops * batch / best / 1e9,
                    "floor_ms": 1e3 * floor,
                    "ratio_to_floor": best / floor,
                }
            )
            print(
                f"  {name:15s} {kind:11s} {device:4s} {precision} b={batch:<4d} "
                f"{1e3 * latency:9.2f} ms (best {1e3 * best:.2f})  x{best / floor:6.1f} floor",
                file=sys.stderr,
                flush=True,
            )
            if latency > args.max_seconds:
                break
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Hardware: {meta['cpu']} ({meta['threads']} threads used){', ' + meta['gpu'] if meta['gpu'] else ''}. "
        f"Measured peak: CPU {meta['peak_gflops']['cpu']:.1f} GFLOP/s (best float32 square matmul of "
        + ", ".join(f"{k} {v:.1f}" for k, v in meta["cpu_peak_gflops_by_library"].items())
        + ")"
        + (f", GPU {meta['peak_gflops']['cuda']:.0f} GFLOP/s (float16)" if meta["peak_gflops"].get("cuda") else "")
        + ". Latency = one backend.run on host arrays (no pre/post-processing): median and best of the "
        "runs; GFLOP/s and x floor (best / (FLOPs / peak)) use the best.",
        "",
        "| model | input | backend | device | prec | batch | median ms | best ms | samples/s | GFLOP/sample | GFLOP/s | x floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {'x'.join(map(str, r['input']))} | {r['backend']} | {r['device']} | {r['precision']} | "
            f"{r['batch']} | {r['latency_ms']:.2f} | {r['best_ms']:.2f} | {r['throughput_per_s']:.1f} | {r['gflops_per_sample']:.3f} | "
            f"{r['achieved_gflops_per_s']:.1f} | {r['ratio_to_floor']:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32, 128, 256])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and ONNX Runtime")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--max-seconds", type=float, default=2.0, help="stop growing the batch once one run takes longer than this"
    )
    parser.add_argument("--out", default="bench_models.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    # CPU peak: the best float32 GEMM any library here achieves (PyTorch's and ONNX Runtime's
    # differ by up to 1.5x on this AMD machine), so no backend can beat its own floor.
    cpu_peaks = {"torch_matmul": max(measure_peak_flops("cpu", args.threads, size) for size in (1024, 2048, 2048))}
    try:
        cpu_peaks["onnxruntime_matmul"] = max(measure_ort_peak_flops(args.threads, size) for size in (1024, 2048, 2048))
    except ImportError:
        pass
    peaks = {"cpu": max(cpu_peaks.values())}
    if torch.cuda.is_available():
        peaks["cuda"] = measure_peak_flops("cuda", args.threads, size=8192)
    meta = {
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "peak_gflops": {k: v / 1e9 for k, v in peaks.items()},
        "cpu_peak_gflops_by_library": {k: v / 1e9 for k, v in cpu_peaks.items()},
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            rows += bench_model(
                name, backend_configs(args.threads), args.batches, args.threads, peaks, args, Path(workdir)
            )
    print(markdown(rows, meta))
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
