"""The one prepared device check: build, CUDA tests, kernels, FP16 parity, fps, training, one JSON.

    python benchmarks/gpu/device_check.py --data .carry/data --out "$OUT"       # on the GPU machine
    python benchmarks/gpu/device_check.py --smoke --out /tmp/check               # CPU, in CI

Each section runs in its own child process under its own time limit, so a hang or a crash in one
(a CUDA error, a stuck decoder) costs that section only; the parent writes every section's result,
status and seconds to `device_check.json` under --out and prints a short table last. `--smoke`
runs the same sections on the CPU with small sizes (the build is skipped there, training runs 2 steps), so
the script cannot rot between GPU loans. benchmarks/gpu/README.md says how to prepare the carry.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
# Section -> seconds on the GPU machine: 480 s in all, the 8 minutes the check may take.
BUDGET_S = {"env": 30, "build": 140, "cuda_tests": 60, "kernels": 40, "fp16_parity": 60, "fps": 60, "train": 90}
SMOKE_BUDGET_S = {"env": 30, "build": 5, "cuda_tests": 60, "kernels": 30, "fp16_parity": 60, "fps": 60, "train": 120}
MODELS = ("dlib_resnet_v1", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "retinaface", "edsr")


# -- sections: each returns a JSON-able dict ---------------------------------------------------------------


def section_env(args) -> dict:
    import torch

    import fhsdk.kernels as kernels

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "fhsdk_cuda_kernels": kernels.cuda_available(),
        "fhsdk_cuda_reason": kernels.cuda_unavailable_reason(),
    }
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)))
    try:
        from fhsdk.runtime.build import import_tensorrt, tensorrt_major

        trt = import_tensorrt()
        info.update(tensorrt=trt.__version__, tensorrt_major=tensorrt_major(trt))
    except Exception as error:  # noqa: BLE001 - absence is a finding, not a failure
        info["tensorrt"] = f"unavailable: {error}"
    for name in ("onnxruntime", "cv2", "cupy", "torchcodec", "PyNvVideoCodec"):
        try:
            info[name] = getattr(__import__(name), "__version__", "present")
        except Exception as error:  # noqa: BLE001
            info[name] = f"unavailable: {type(error).__name__}"
    return info


def section_build(args) -> dict:
    if args.smoke:
        return {"skipped": "smoke: the CPU build is CI's own install step"}
    env = dict(os.environ, FHSDK_CUDA_ARCHS="90")
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "--force"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise RuntimeError(f"build failed:\n{run.stderr[-3000:]}")
    probe = subprocess.run(
        [sys.executable, "-c", "import fhsdk._C as c; print(c.cuda_compiled(), repr(c.cuda_unavailable_reason()))"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return {"seconds": round(time.perf_counter() - start, 1), "archs": "sm_90 + PTX", "probe": probe.stdout.strip()}


def section_cuda_tests(args) -> dict:
    tests = [
        "tests/test_kernels.py",
        "tests/test_runtime.py",
        "tests/test_tensorrt_plan.py",
        "tests/test_device_frames.py",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, "-k", "cuda or gpu or tensorrt"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    tail = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:]
    if run.returncode not in (0, 5):  # 5: nothing selected
        raise RuntimeError(f"CUDA tests failed: {tail}\n{run.stdout[-3000:]}")
    return {"summary": tail}


def _device(args) -> str:
    import torch

    return "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"


def _median_seconds(fn, device: str, repeats: int) -> float:
    """Median of `repeats` timed calls after two warm-ups (CUDA events on a GPU)."""
    import torch

    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def _host(array) -> np.ndarray:
    return array.cpu().numpy() if hasattr(array, "cpu") else np.asarray(array)


def section_kernels(args) -> dict:
    """Kernel parity against the CPU kernel / float64 reference, and GB/s against a device copy."""
    import torch

    import fhsdk.kernels as K

    device = _device(args)
    rng = np.random.default_rng(int(time.time()))  # fresh inputs every run
    scale = 1 if args.smoke else 64
    copy_bytes = (16 << 20) * scale
    src = torch.rand(copy_bytes // 4, device=device)
    dst = torch.empty_like(src)
    copy_s = _median_seconds(lambda: dst.copy_(src), device, 5)
    results = {"device": device, "copy_GBps": 2 * copy_bytes / copy_s / 1e9}  # read + write

    n, d, b, k = (20_000 if args.smoke else 1_000_000), 128, 64, 5
    gallery = rng.standard_normal((n, d)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries = gallery[rng.integers(0, n, b)] + 0.01 * rng.standard_normal((b, d)).astype(np.float32)
    ref_idx, _ = K.cosine_topk(queries, gallery, k, backend="cpu")
    for storage in (np.float32, np.float16):
        g = torch.from_numpy(gallery.astype(storage)).to(device)
        q = torch.from_numpy(queries).to(device)
        idx, sims = K.cosine_topk(q, g, k)
        agree = float((_host(idx)[:, 0] == ref_idx[:, 0]).mean())
        seconds = _median_seconds(lambda: K.cosine_topk(q, g, k), device, 5)
        gbytes = g.numel() * g.element_size() / 1e9
        results[f"cosine_topk_{np.dtype(storage).name}"] = {
            "N": n,
            "D": d,
            "B": b,
            "k": k,
            "top1_agreement_with_cpu": agree,
            "ms": seconds * 1e3,
            "GBps": gbytes / seconds,
            "fraction_of_copy": gbytes / seconds / results["copy_GBps"],
        }

    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    affines = np.array([[[0.5, 0.1, 100 + 20 * i], [-0.1, 0.5, 50 + 10 * i]] for i in range(64)], np.float32)
    cpu = K.resize_normalize_affine(frame, affines, 150, 127.5, 1 / 128, backend="cpu")
    frame_dev = torch.from_numpy(frame).to(device)
    out = K.resize_normalize_affine(frame_dev, affines, 150, 127.5, 1 / 128)
    seconds = _median_seconds(lambda: K.resize_normalize_affine(frame_dev, affines, 150, 127.5, 1 / 128), device, 5)
    written = out.numel() * out.element_size() if hasattr(out, "element_size") else out.nbytes
    results["resize_normalize_affine"] = {
        "faces": 64,
        "side": 150,
        "max_abs_vs_cpu": float(np.abs(_host(out) - cpu).max()),
        "ms": seconds * 1e3,
        "GBps_written": written / seconds / 1e9,
    }
    return results


def section_fp16_parity(args) -> dict:
    """Per model: the FP16 ONNX graph vs FP32 under ONNX Runtime CPU; on a GPU also torch autocast."""
    import fhsdk.detect  # noqa: F401  (registers the detectors' deployment presets)
    import fhsdk.models  # noqa: F401  (the recogniser's and generators')
    from fhsdk.runtime import create_backend, get_preset
    from fhsdk.runtime.export import export_fp16, export_preset
    from fhsdk.runtime.verify import verify_backend

    weights = {"edsr": REPO / "fhsdk" / "weights" / "hallucinator_default.pt"}
    device = _device(args)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in MODELS:
            preset = get_preset(name)
            model = _model_with_weights(name, weights.get(name))
            shapes = {"mtcnn_pnet": (3, 216, 384), "retinaface": (3, 224, 384), "edsr": (3, 32, 32)}
            sample = shapes.get(name, preset.io.example_shapes["image"][1:])
            feeds = [
                {"image": np.random.default_rng(seed).random((2 if args.smoke else 8, *sample)).astype(np.float32)}
                for seed in (1, 2)
            ]
            fp32 = export_preset(name, Path(folder) / f"{name}.onnx", model=model).path
            report = export_fp16(fp32, feeds=feeds)
            rows[name] = {"fp32_ops": list(report.fp32_ops), "onnx_fp16_vs_fp32": _worst(report.parity)}
            if device == "cuda":
                reference = create_backend("torch", model, device="cuda", precision="fp32", io=preset.io)
                autocast = create_backend("torch", model, device="cuda", precision="fp16", io=preset.io)
                rows[name]["torch_autocast_vs_fp32"] = _worst(verify_backend(autocast, reference, feeds).outputs)
    return rows


def _model_with_weights(name: str, path: Path | None):

    import fhsdk.detect  # noqa: F401  (registers the detectors' deployment presets)
    import fhsdk.models  # noqa: F401
    from fhsdk.runtime import get_preset

    if name == "edsr" and path is not None:
        from fhsdk.models.hallucinator_file import read_hallucinator

        return read_hallucinator(path).build()
    if name == "dlib_resnet_v1":
        from fhsdk.models import create_model

        return create_model(name, pretrained=True).eval()
    return get_preset(name).build()


def _worst(comparisons) -> dict:
    return {
        c.name: {"cos_min": round(c.cosine_min, 7), "max_abs": float(f"{c.max_abs:.3g}"), "passed": c.passed}
        for c in comparisons
    }


def section_fps(args) -> dict:
    """Per-stage and end-to-end fps on the two clips, decoding included (the reader thread)."""
    import fhsdk

    device = _device(args)
    data = Path(args.data)
    frames = 3 if args.smoke else 100
    results = {"device": device}
    for clip in ("crowd_1080p.mp4", "hamilton_clip.mp4"):
        path = data / "video" / clip
        if not path.is_file():
            results[clip] = {"skipped": f"{path} not found (carry the clips: benchmarks/gpu/README.md)"}
            continue
        pipe = fhsdk.Pipeline(device=device, batch_frames=1 if args.smoke else 4)
        stages: dict[str, float] = {}
        count = faces = 0
        start = time.perf_counter()
        for result in pipe.stream(str(path)):
            count += 1
            faces += len(result.faces)
            for stage, seconds in result.timings.items():
                stages[stage] = stages.get(stage, 0.0) + seconds
            if count >= frames:
                break
        seconds = time.perf_counter() - start
        results[clip] = {
            "frames": count,
            "faces": faces,
            "end_to_end_fps": count / seconds,
            "stage_ms_per_frame": {k: 1e3 * v / count for k, v in stages.items()},
        }
    return results


# The training procedures with a GPU preset that the section starts on the card, each for TRAIN_STEPS steps.
TRAIN_PROCEDURES = ("lai", "pipeline_finetune", "distill")
TRAIN_STEPS, TRAIN_IMAGES = 12, 240
SMOKE_TRAIN_STEPS, SMOKE_TRAIN_IMAGES = 2, 24


def section_train(args) -> dict:
    """Build a small face cache from the carried CelebA slice, then run every procedure's GPU preset (CPU
    preset, batch 4, in smoke) for a few steps: that it starts on the card, and its samples per second."""
    import csv

    data = Path(args.data) / "celeba_subset"
    if not (data / "identities.csv").is_file():
        return {"skipped": f"{data} not carried (benchmarks/gpu/prepare_carry.py copies a slice)"}
    device = _device(args)
    out = Path(args.out) / "train"
    cache = out / "faces.npz"
    steps = SMOKE_TRAIN_STEPS if args.smoke else TRAIN_STEPS
    images = SMOKE_TRAIN_IMAGES if args.smoke else TRAIN_IMAGES
    build = [sys.executable, "-m", "train.data", str(data), "--limit", str(images), "--out", str(cache)]
    subprocess.run(build + ["--device", device], cwd=REPO, check=True, capture_output=True, text=True)
    results = {}
    for procedure in TRAIN_PROCEDURES:
        run_dir = out / procedure
        command = [sys.executable, "-m", "train", procedure, "--device", device, "--cache", str(cache)]
        command += ["--data", str(data), "--out", str(run_dir), "--no-eval", "--no-progress"]
        command += ["--set", f"train.steps={steps}", "--set", f"train.checkpoint_every={steps}"]
        command += ["--preset", "cpu_small", "--set", "data.batch_size=4"] if args.smoke else ["--preset", "gpu_full"]
        run = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        log = run_dir / "log.csv"
        if run.returncode != 0 or not log.is_file():
            results[procedure] = {"returncode": run.returncode, "tail": (run.stdout + run.stderr)[-1500:]}
            continue
        with open(log, newline="") as handle:
            seconds = [float(row["sec"]) for row in csv.DictReader(handle)][1:]  # the first step warms up
        batch = _run_batch_size(run_dir)
        median = float(np.median(seconds)) if seconds else float("nan")
        results[procedure] = {"steps": steps, "batch": batch, "s_per_step": median, "samples_per_s": batch / median}
    return {"device": device, "cache_images": images, "procedures": results}


def _run_batch_size(run_dir: Path) -> int:
    import yaml

    return int(yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["batch_size"])


SECTIONS = {name[len("section_") :]: fn for name, fn in globals().items() if name.startswith("section_")}


# -- driver ----------------------------------------------------------------------------------------------


def run_section(name: str, args) -> None:
    """Child process: run one section and write its result as JSON to --section-out."""
    try:
        payload = {"status": "ok", "result": SECTIONS[name](args)}
    except Exception as error:  # noqa: BLE001 - the parent records every failure and goes on
        payload = {"status": "failed", "error": f"{type(error).__name__}: {error}"[-4000:]}
    Path(args.section_out).write_text(json.dumps(payload, default=float))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, small sizes; build skipped")
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "data"), help="folder holding video/ (and celeba_subset/)"
    )
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results/device_check"))
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument(
        "--budget-scale",
        type=float,
        default=1.0,
        help="multiply every section's time limit (e.g. 10 for full sizes on a CPU)",
    )
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--section-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.section:
        run_section(args.section, args)
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budgets = {
        name: seconds * args.budget_scale for name, seconds in (SMOKE_BUDGET_S if args.smoke else BUDGET_S).items()
    }
    report = {"smoke": args.smoke, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sections": {}}
    for name in args.sections.split(","):
        section_out = out / f".{name}.json"
        command = [
            sys.executable,
            __file__,
            "--section",
            name,
            "--section-out",
            str(section_out),
            "--data",
            args.data,
            "--out",
            str(out),
        ] + (["--smoke"] if args.smoke else [])
        start = time.perf_counter()
        try:
            subprocess.run(
                command, cwd=REPO, timeout=budgets[name], check=False, env=dict(os.environ, PYTHONUNBUFFERED="1")
            )
            entry = (
                json.loads(section_out.read_text())
                if section_out.is_file()
                else {"status": "failed", "error": "the section exited without a result (crashed)"}
            )
        except subprocess.TimeoutExpired:
            entry = {"status": "timed_out", "error": f"over its {budgets[name]} s budget"}
        entry["seconds"] = round(time.perf_counter() - start, 1)
        section_out.unlink(missing_ok=True)
        report["sections"][name] = entry
        (out / "device_check.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"{'section':14s} {'status':10s} {'s':>6s}")
    for name, entry in report["sections"].items():
        print(f"{name:14s} {entry['status']:10s} {entry['seconds']:6.1f}  {entry.get('error', '')[:100]}")
    print(f"results: {out / 'device_check.json'}")
    return 0 if all(e["status"] == "ok" for e in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
