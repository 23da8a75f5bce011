"""How well fhsdk's detectors (RetinaFace, MTCNN) find faces and place landmarks, against dlib as the reference.

1. LFW (every image pairs.txt references, 250x250 with the face centred): the rate at which the
   central face is found (a detection whose box contains the image centre), and the landmark error
   against dlib's shape predictors run on dlib's HOG box, as a fraction of dlib's inter-ocular
   distance (NME): eye centres against the 5-point predictor (eye centre = mean of the eye's two
   corners), all five points against the 68-point predictor (eyes 36-41 / 42-47, nose tip 30,
   mouth corners 48 / 54).
2. Shrunk LFW (a fixed, evenly spaced subset): each image shrunk (INTER_AREA) so its canonical face
   region (fhsdk.align's, measured from dlib's 68 points on the full image) is 32 / 24 / 16 / 12 / 8 px,
   pasted in the middle of a grey frame three times its size; recall of that face (a detection whose
   box holds the face's centre) and its landmark error against dlib's 68 points (mapped into the frame)
   for each detector setting, with CPU time per frame. Upscaled MTCNN settings enlarge the frame with
   cv2 (bilinear) before detecting, as RetinaFace's tiny-face mode does inside the detector.
3. The 1080p crowd clip: faces per frame of RetinaFace (the plain pass alone, on PyTorch and ONNX
   Runtime, and with the tiny-face pass for 24 px faces, x2), our MTCNN (min_face_size 20 on PyTorch and
   ONNX Runtime, and 12) and dlib's HOG detector (upsample 0 and 1), with wall and CPU time per frame of
   each, as ratios within the same run (--video-detectors picks a subset).

    python benchmarks/detector_accuracy.py --data ../shared/data --out detector_accuracy.json

dlib is the reference only; it is never used at run time by fhsdk.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from fhsdk.align import region_side_px
from fhsdk.detect import LANDMARK_NAMES, MTCNN, Detections, RetinaFace
from fhsdk.errors import DataNotFoundError
from fhsdk.eval.protocol import check_lfw_dir, read_pairs
from fhsdk.threads import apply as apply_threads
from fhsdk.video import iterate_source
from fhsdk.weights import package_file

DLIB_MODELS = "face_recognition_models"
UPSCALED_UP_TO = 16  # px: the x3/x4 and upscaled-MTCNN settings run on faces this small and smaller


def central_index(boxes: np.ndarray, shape: tuple[int, int]) -> int | None:
    """Index of the box containing the image centre whose own centre is nearest to it, else None."""
    return box_holding(boxes, np.array([shape[1], shape[0]], dtype=np.float64) / 2)


def dlib_boxes(rectangles) -> np.ndarray:
    return np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rectangles], dtype=np.float64).reshape(
        -1, 4
    )


def dlib_points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def reference_landmarks_5(points: np.ndarray) -> np.ndarray:
    """Eye centres (image-left, image-right) from dlib's 5 points: 0-1 right-hand eye, 2-3 left-hand, 4 nose base."""
    return np.stack([points[2:4].mean(axis=0), points[0:2].mean(axis=0)])


def reference_landmarks_68(points: np.ndarray) -> np.ndarray:
    """MTCNN's five points from dlib's 68 (iBUG numbering, 0-based), in LANDMARK_NAMES order."""
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])


def nme_summary(offsets: np.ndarray, names: tuple[str, ...]) -> dict:
    """Mean and median NME per point and over all points, and the mean signed offset (a bias shows
    there); offsets is N x P x 2, (ours - reference) / inter-ocular distance."""
    if len(offsets) == 0:
        return {"count": 0}
    errors = np.linalg.norm(offsets, axis=2)
    summary = {"count": int(len(errors))}
    for i, name in enumerate(names):
        summary[name] = {
            "mean": float(errors[:, i].mean()),
            "median": float(np.median(errors[:, i])),
            "mean_offset_xy": [round(float(v), 4) for v in offsets[:, i].mean(axis=0)],
        }
    summary["all_points"] = {"mean": float(errors.mean()), "median": float(np.median(errors.mean(axis=1)))}
    summary["fraction_over_0.1"] = float((errors.mean(axis=1) > 0.1).mean())
    return summary


def lfw_benchmark(args, detectors: dict, dlib) -> dict:
    root = check_lfw_dir(Path(args.data) / "lfw")
    images = read_pairs(root).images
    if args.limit:
        images = images[:: max(1, len(images) // args.limit)][: args.limit]
    hog = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(str(package_file(DLIB_MODELS, "models/shape_predictor_5_face_landmarks.dat")))
    sp68 = dlib.shape_predictor(str(package_file(DLIB_MODELS, "models/shape_predictor_68_face_landmarks.dat")))

    found = {name: 0 for name in [*detectors, "dlib_hog"]}
    errors_5 = {name: [] for name in detectors}
    errors_68 = {name: [] for name in detectors}
    dlib_5_vs_68 = []
    wall = {name: 0.0 for name in found}
    cpu = {name: 0.0 for name in detectors}
    progress = tqdm(total=len(images), desc="LFW", unit="img")
    for start in range(0, len(images), args.batch):
        names = images[start : start + args.batch]
        frames = []
        for name in names:
            frame = cv2.imread(str(root / "images" / name), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataNotFoundError(f"cannot read {root / 'images' / name}: the LFW folder is incomplete")
            frames.append(frame)
        detections = {}
        for name, detector in detectors.items():
            started, clock = time.perf_counter(), time.process_time()
            detections[name] = detector.detect(frames)
            wall[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - clock
        for i, frame in enumerate(frames):
            rgb = np.ascontiguousarray(frame[:, :, ::-1])
            started = time.perf_counter()
            rectangles = hog(rgb, args.lfw_upsample)
            wall["dlib_hog"] += time.perf_counter() - started
            theirs = central_index(dlib_boxes(rectangles), frame.shape[:2])
            found["dlib_hog"] += theirs is not None
            if theirs is not None:
                ref5 = reference_landmarks_5(dlib_points(sp5(rgb, rectangles[theirs])))
                ref68 = reference_landmarks_68(dlib_points(sp68(rgb, rectangles[theirs])))
                iod5, iod68 = np.linalg.norm(ref5[1] - ref5[0]), np.linalg.norm(ref68[1] - ref68[0])
                dlib_5_vs_68.append((ref5 - ref68[:2]) / iod68)
            for name in detectors:
                ours = central_index(detections[name][i].boxes, frame.shape[:2])
                found[name] += ours is not None
                if ours is None or theirs is None:
                    continue
                points = detections[name][i].landmarks[ours].astype(np.float64)
                errors_5[name].append((points[:2] - ref5) / iod5)
                errors_68[name].append((points - ref68) / iod68)
        progress.update(len(names))
    progress.close()
    count = len(images)
    return {
        "images": count,
        "images_source": "every image referenced by lfw/pairs.txt"
        + (f" (every n-th, --limit {args.limit})" if args.limit else ""),
        "central_face_detection_rate": {name: hits / count for name, hits in found.items()},
        "dlib_hog_upsample": args.lfw_upsample,
        "nme_eye_centres_vs_dlib_5point": {
            n: nme_summary(np.array(e), LANDMARK_NAMES[:2]) for n, e in errors_5.items()
        },
        "nme_5_points_vs_dlib_68point": {n: nme_summary(np.array(e), LANDMARK_NAMES) for n, e in errors_68.items()},
        "nme_dlib_5point_vs_dlib_68point_eyes": nme_summary(np.array(dlib_5_vs_68), LANDMARK_NAMES[:2]),
        "seconds_per_image": {
            **{f"{n}_wall": t / count for n, t in wall.items()},
            **{f"{n}_cpu": t / count for n, t in cpu.items()},
            "batch": args.batch,
        },
    }


class Upscaled:
    """A detector run on the frame enlarged by `factor` (cv2 bilinear), detections mapped back."""

    def __init__(self, detector, factor: float):
        self.detector, self.factor = detector, factor

    def detect(self, frames: list[np.ndarray]) -> list[Detections]:
        big = [cv2.resize(f, None, fx=self.factor, fy=self.factor, interpolation=cv2.INTER_LINEAR) for f in frames]
        return [
            Detections(d.boxes / self.factor, d.scores, (d.landmarks + 0.5) / self.factor - 0.5)
            for d in self.detector.detect(big)
        ]


def shrunk_settings() -> dict:
    """Every detector setting the shrunk-LFW table compares, with the largest face size (px) it runs
    at: the upscaled ones are for small faces only (MTCNN's best per size is picked from its rows)."""
    every, small = 10_000, UPSCALED_UP_TO
    return {
        "retinaface_x1": (RetinaFace(upscale=1), every),
        "retinaface_x2": (RetinaFace(upscale=2), every),
        "retinaface_min20": (RetinaFace(min_face_size=20), every),  # the Pipeline default min face: x2.4
        "retinaface_x3": (RetinaFace(upscale=3), small),
        "retinaface_x4": (RetinaFace(upscale=4), small),
        "mtcnn_min20": (MTCNN(min_face_size=20), every),
        "mtcnn_min12": (MTCNN(min_face_size=12), every),
        "mtcnn_min12_up2": (Upscaled(MTCNN(min_face_size=12), 2), small),
        "mtcnn_min12_up3": (Upscaled(MTCNN(min_face_size=12), 3), small),
    }


def place_in_grey_frame(image: np.ndarray, scale: float) -> tuple[np.ndarray, float, np.ndarray]:
    """`image` shrunk by `scale` (INTER_AREA) in the middle of a grey frame 3x its size; returns the
    frame, the exact scale used and the offset of the shrunk image's top-left pixel edge."""
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    frame = np.full((3 * size[1], 3 * size[0], 3), 127, np.uint8)
    frame[size[1] : 2 * size[1], size[0] : 2 * size[0]] = small
    return frame, size[0] / width, np.array(size, dtype=np.float64)


def shrunk_lfw_benchmark(args, dlib) -> dict:
    root = check_lfw_dir(Path(args.data) / "lfw")
    images = read_pairs(root).images
    images = images[:: max(1, len(images) // args.shrunk_images)][: args.shrunk_images]
    hog = dlib.get_frontal_face_detector()
    sp68 = dlib.shape_predictor(str(package_file(DLIB_MODELS, "models/shape_predictor_68_face_landmarks.dat")))
    references = {}  # name -> dlib's 68 points reduced to the five, on the full image
    for name in tqdm(images, desc="dlib reference", unit="img"):
        frame = cv2.imread(str(root / "images" / name), cv2.IMREAD_COLOR)
        if frame is None:
            raise DataNotFoundError(f"cannot read {root / 'images' / name}: the LFW folder is incomplete")
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        rectangles = hog(rgb, 1)
        index = central_index(dlib_boxes(rectangles), frame.shape[:2])
        if index is not None:
            references[name] = (frame, reference_landmarks_68(dlib_points(sp68(rgb, rectangles[index]))))
    settings = {
        name: value
        for name, value in shrunk_settings().items()
        if not args.shrunk_settings or name in args.shrunk_settings
    }
    rows: dict[str, dict] = {name: {} for name in settings}
    for side in args.sizes:
        frames, truths = [], []
        for image, points in references.values():
            frame, scale, offset = place_in_grey_frame(image, side / region_side_px(points[None])[0])
            frames.append(frame)
            truths.append((points + 0.5) * scale - 0.5 + offset)  # pixel centres, into the grey frame
        for name, (detector, largest) in settings.items():
            if side > largest:
                continue
            found, offsets, cpu = 0, [], 0.0
            for start in tqdm(range(0, len(frames), args.batch), desc=f"{side} px {name}", unit_scale=args.batch):
                clock = time.process_time()
                detections = detector.detect(frames[start : start + args.batch])
                cpu += time.process_time() - clock
                for truth, detected in zip(truths[start : start + args.batch], detections):
                    index = box_holding(detected.boxes, truth.mean(axis=0))
                    if index is None:
                        continue
                    found += 1
                    offsets.append((detected.landmarks[index] - truth) / np.linalg.norm(truth[1] - truth[0]))
            rows[name][str(side)] = {
                "recall": found / len(frames),
                "nme_5_points_vs_dlib_68point": nme_summary(np.array(offsets), LANDMARK_NAMES),
                "cpu_ms_per_frame": 1000 * cpu / len(frames),
            }
    return {
        "images": len(images),
        "images_with_dlib_reference": len(references),
        "images_source": f"every n-th image referenced by lfw/pairs.txt (--shrunk-images {args.shrunk_images})",
        "frame": "grey (127) frame 3x the shrunk image's width and height, image in the middle",
        "per_setting": rows,
    }


def box_holding(boxes: np.ndarray, point: np.ndarray) -> int | None:
    """Index of the box containing `point` whose centre is nearest to it, else None."""
    if len(boxes) == 0:
        return None
    contains = np.all((boxes[:, :2] <= point) & (boxes[:, 2:] >= point), axis=1)
    if not contains.any():
        return None
    distance = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - point, axis=1)
    distance[~contains] = np.inf
    return int(np.argmin(distance))


def read_frames(path: Path, stride: int, limit: int | None) -> list[np.ndarray]:
    """Every `stride`-th decoded frame, at most `limit` of them (fhsdk's own video reader)."""
    frames = [f.image for f in itertools.islice(iterate_source(str(path)), 0, None, stride)]
    return frames[:limit] if limit else frames


def video_benchmark(args, dlib) -> dict:
    path = Path(args.data) / "video" / "crowd_1080p.mp4"
    frames = read_frames(path, args.video_stride, args.video_frames)
    if not frames:
        raise DataNotFoundError(f"no frames could be read from {path}")
    hog = dlib.get_frontal_face_detector()
    detectors = {
        "retinaface": lambda: RetinaFace(),
        "retinaface_ort": lambda: RetinaFace().use_backend("onnxruntime"),
        "retinaface_min24_x2": lambda: RetinaFace(min_face_size=24),
        "mtcnn_min20": lambda: MTCNN(min_face_size=20),
        "mtcnn_min20_ort": lambda: MTCNN(min_face_size=20).use_backend("onnxruntime"),
        "mtcnn_min12": lambda: MTCNN(min_face_size=12),
    }
    chosen = args.video_detectors or [*detectors, "dlib_hog_up0", "dlib_hog_up1"]
    if "mtcnn_min20" not in chosen:
        chosen = [*chosen, "mtcnn_min20"]  # the reference of the time ratios
    detectors = {name: build() for name, build in detectors.items() if name in chosen}
    for detector in detectors.values():  # sessions and caches warmed outside the timed loop
        detector.detect(frames[0])
    counts = {name: [] for name in [*detectors, *(n for n in ("dlib_hog_up0", "dlib_hog_up1") if n in chosen)]}
    widths = {name: [] for name in counts}
    seconds = {name: 0.0 for name in counts}
    cpu = {name: 0.0 for name in counts}
    for frame in tqdm(frames, desc="crowd_1080p", unit="frame"):
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        runs = {name: (lambda d=d: d.detect(frame)[0].boxes) for name, d in detectors.items()}
        runs.update(
            {f"dlib_hog_up{u}": (lambda u=u: dlib_boxes(hog(rgb, u))) for u in (0, 1) if f"dlib_hog_up{u}" in counts}
        )
        for name, run in runs.items():
            wall, clock = time.perf_counter(), time.process_time()
            boxes = run()
            seconds[name] += time.perf_counter() - wall
            cpu[name] += time.process_time() - clock
            counts[name].append(len(boxes))
            widths[name].extend((boxes[:, 2] - boxes[:, 0]).tolist())
    reference = seconds["mtcnn_min20"]
    return {
        "video": str(path.name),
        "frames": len(frames),
        "frame_stride": args.video_stride,
        "frame_size": list(frames[0].shape[1::-1]),
        "per_detector": {
            name: {
                "faces_per_frame_mean": float(np.mean(counts[name])),
                "faces_per_frame_min": int(np.min(counts[name])),
                "faces_per_frame_max": int(np.max(counts[name])),
                "face_width_px_median": float(np.median(widths[name])) if widths[name] else None,
                "face_width_px_min": float(np.min(widths[name])) if widths[name] else None,
                "seconds_per_frame_wall": seconds[name] / len(frames),
                "seconds_per_frame_cpu": cpu[name] / len(frames),
                "time_ratio_to_mtcnn_min20": seconds[name] / reference,
                "cpu_ratio_to_mtcnn_min20": cpu[name] / cpu["mtcnn_min20"],
                **(
                    {"cpu_ratio_to_mtcnn_min20_ort": cpu[name] / cpu["mtcnn_min20_ort"]}
                    if "mtcnn_min20_ort" in cpu
                    else {}
                ),
            }
            for name in counts
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data", help="shared data folder (holds lfw/ and video/)")
    parser.add_argument("--limit", type=int, default=0, help="use only N LFW pair images, evenly spaced (0: all)")
    parser.add_argument("--batch", type=int, default=16, help="LFW images per MTCNN call")
    parser.add_argument("--lfw-upsample", type=int, default=1, help="dlib HOG upsampling on LFW")
    parser.add_argument("--video-stride", type=int, default=5, help="use every n-th frame of the clip")
    parser.add_argument("--video-frames", type=int, default=0, help="stop after this many frames (0: whole clip)")
    parser.add_argument(
        "--video-detectors",
        nargs="+",
        default=None,
        help="crowd rows to run (default: all): retinaface, retinaface_ort, retinaface_min24_x2, "
        "mtcnn_min20, mtcnn_min20_ort, mtcnn_min12, dlib_hog_up0, dlib_hog_up1",
    )
    parser.add_argument("--shrunk-images", type=int, default=600, help="LFW images in the shrunk-face test")
    parser.add_argument(
        "--shrunk-settings",
        nargs="+",
        default=None,
        help="shrunk-LFW rows to run (default: all): retinaface_x1 ... _x4, mtcnn_min20, mtcnn_min12, "
        "mtcnn_min12_up2, mtcnn_min12_up3",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 24, 16, 12, 8], help="canonical region sides (px)")
    parser.add_argument("--skip-lfw", action="store_true")
    parser.add_argument("--skip-shrunk", action="store_true")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads of every pool (default: fhsdk.threads.DEFAULT_THREADS)"
    )
    parser.add_argument("--out", default="detector_accuracy.json", help="JSON results file")
    args = parser.parse_args()

    try:
        import dlib
    except ImportError as error:
        raise SystemExit("this benchmark compares against dlib: pip install dlib-bin") from error
    args.threads = apply_threads(args.threads)  # torch, ONNX Runtime, cv2, fhsdk kernels
    result = {
        "hardware": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} torch thread(s), CPU only",
        "command": "python benchmarks/detector_accuracy.py "
        + " ".join(
            f"--{k.replace('_', '-')}"
            + ("" if v is True else f" {' '.join(map(str, v)) if isinstance(v, list) else v}")
            for k, v in vars(args).items()
            if v is not False
        ),
    }
    if not args.skip_lfw:
        result["lfw"] = lfw_benchmark(args, {"retinaface": RetinaFace(), "mtcnn": MTCNN(min_face_size=20)}, dlib)
    if not args.skip_shrunk:
        result["shrunk_lfw"] = shrunk_lfw_benchmark(args, dlib)
    if not args.skip_video:
        result["crowd_video"] = video_benchmark(args, dlib)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
