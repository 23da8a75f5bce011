"""How well fhsdk's MTCNN finds faces and places landmarks, against dlib as the reference.

1. LFW (every image pairs.txt references, 250x250 with the face centred): the rate at which the
   central face is found (a detection whose box contains the image centre), and the landmark error
   against dlib's shape predictors run on dlib's HOG box, as a fraction of dlib's inter-ocular
   distance (NME): eye centres against the 5-point predictor (eye centre = mean of the eye's two
   corners), all five points against the 68-point predictor (eyes 36-41 / 42-47, nose tip 30,
   mouth corners 48 / 54).
2. The 1080p crowd clip: faces per frame of our MTCNN (min_face_size 20 and 12) and dlib's HOG
   detector (upsample 0 and 1), with time per frame of each, as ratios within the same run.

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

from fhsdk.detect import LANDMARK_NAMES, MTCNN
from fhsdk.eval.protocol import check_lfw_dir, read_pairs
from fhsdk.errors import DataNotFoundError
from fhsdk.video import iterate_source
from fhsdk.weights import package_file

DLIB_MODELS = "face_recognition_models"


def central_index(boxes: np.ndarray, shape: tuple[int, int]) -> int | None:
    """Index of the box containing the image centre whose own centre is nearest to it, else None."""
    if len(boxes) == 0:
        return None
    centre = np.array([shape[1], shape[0]], dtype=np.float64) / 2
    contains = np.all((boxes[:, :2] <= centre) & (boxes[:, 2:] >= centre), axis=1)
    if not contains.any():
        return None
    distance = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1)
    distance[~contains] = np.inf
    return int(np.argmin(distance))


def dlib_boxes(rectangles) -> np.ndarray:
    return np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rectangles],
                    dtype=np.float64).reshape(-1, 4)


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
        summary[name] = {"mean": float(errors[:, i].mean()), "median": float(np.median(errors[:, i])),
                         "mean_offset_xy": [round(float(v), 4) for v in offsets[:, i].mean(axis=0)]}
    summary["all_points"] = {"mean": float(errors.mean()), "median": float(np.median(errors.mean(axis=1)))}
    summary["fraction_over_0.1"] = float((errors.mean(axis=1) > 0.1).mean())
    return summary


def lfw_benchmark(args, detector: MTCNN, dlib) -> dict:
    root = check_lfw_dir(Path(args.data) / "lfw")
    images = read_pairs(root).images
    if args.limit:
        images = images[:: max(1, len(images) // args.limit)][: args.limit]
    hog = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(str(package_file(DLIB_MODELS, "models/shape_predictor_5_face_landmarks.dat")))
    sp68 = dlib.shape_predictor(str(package_file(DLIB_MODELS, "models/shape_predictor_68_face_landmarks.dat")))

    found_ours = found_dlib = 0
    errors_5, errors_68, dlib_5_vs_68 = [], [], []
    ours_seconds = ours_cpu = hog_seconds = 0.0
    progress = tqdm(total=len(images), desc="LFW", unit="img")
    for start in range(0, len(images), args.batch):
        names = images[start : start + args.batch]
        frames = []
        for name in names:
            frame = cv2.imread(str(root / "images" / name), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataNotFoundError(f"cannot read {root / 'images' / name}: the LFW folder is incomplete")
            frames.append(frame)
        wall, cpu = time.perf_counter(), time.process_time()
        detections = detector.detect(frames)
        ours_seconds += time.perf_counter() - wall
        ours_cpu += time.process_time() - cpu
        for frame, found in zip(frames, detections):
            ours = central_index(found.boxes, frame.shape[:2])
            found_ours += ours is not None
            rgb = np.ascontiguousarray(frame[:, :, ::-1])
            wall = time.perf_counter()
            rectangles = hog(rgb, args.lfw_upsample)
            hog_seconds += time.perf_counter() - wall
            theirs = central_index(dlib_boxes(rectangles), frame.shape[:2])
            found_dlib += theirs is not None
            if ours is None or theirs is None:
                continue
            points = found.landmarks[ours].astype(np.float64)
            ref5 = reference_landmarks_5(dlib_points(sp5(rgb, rectangles[theirs])))
            ref68 = reference_landmarks_68(dlib_points(sp68(rgb, rectangles[theirs])))
            iod5 = np.linalg.norm(ref5[1] - ref5[0])
            iod68 = np.linalg.norm(ref68[1] - ref68[0])
            errors_5.append((points[:2] - ref5) / iod5)
            errors_68.append((points - ref68) / iod68)
            dlib_5_vs_68.append((ref5 - ref68[:2]) / iod68)
        progress.update(len(names))
    progress.close()
    count = len(images)
    return {
        "images": count,
        "images_source": "every image referenced by lfw/pairs.txt" + (f" (every n-th, --limit {args.limit})" if args.limit else ""),
        "central_face_detection_rate": {"mtcnn": found_ours / count, "dlib_hog": found_dlib / count},
        "dlib_hog_upsample": args.lfw_upsample,
        "nme_eye_centres_vs_dlib_5point": nme_summary(np.array(errors_5), LANDMARK_NAMES[:2]),
        "nme_5_points_vs_dlib_68point": nme_summary(np.array(errors_68), LANDMARK_NAMES),
        "nme_dlib_5point_vs_dlib_68point_eyes": nme_summary(np.array(dlib_5_vs_68), LANDMARK_NAMES[:2]),
        "seconds_per_image": {"mtcnn_wall": ours_seconds / count, "mtcnn_cpu": ours_cpu / count,
                              "dlib_hog_wall": hog_seconds / count, "mtcnn_batch": args.batch},
    }


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
    detectors = {f"mtcnn_min{size}": MTCNN(min_face_size=size) for size in (20, 12)}
    counts = {name: [] for name in [*detectors, "dlib_hog_up0", "dlib_hog_up1"]}
    widths = {name: [] for name in counts}
    seconds = {name: 0.0 for name in counts}
    cpu = {name: 0.0 for name in counts}
    for frame in tqdm(frames, desc="crowd_1080p", unit="frame"):
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        runs = {name: (lambda d=d: d.detect(frame)[0].boxes) for name, d in detectors.items()}
        runs.update({f"dlib_hog_up{u}": (lambda u=u: dlib_boxes(hog(rgb, u))) for u in (0, 1)})
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
            }
            for name in counts
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data", help="shared data folder (holds lfw/ and video/)")
    parser.add_argument("--limit", type=int, default=0, help="use only N LFW pair images, evenly spaced (0: all)")
    parser.add_argument("--batch", type=int, default=16, help="LFW images per MTCNN call")
    parser.add_argument("--lfw-upsample", type=int, default=1, help="dlib HOG upsampling on LFW")
    parser.add_argument("--video-stride", type=int, default=5, help="use every n-th frame of the clip")
    parser.add_argument("--video-frames", type=int, default=0, help="stop after this many frames (0: whole clip)")
    parser.add_argument("--skip-lfw", action="store_true")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="detector_accuracy.json", help="JSON results file")
    args = parser.parse_args()

    try:
        import dlib
    except ImportError as error:
        raise SystemExit("this benchmark compares against dlib: pip install dlib-bin") from error
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    result = {
        "hardware": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                    f"{args.threads} torch thread(s), CPU only",
        "command": "python benchmarks/detector_accuracy.py " + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
            for k, v in vars(args).items() if v is not False),
    }
    if not args.skip_lfw:
        result["lfw"] = lfw_benchmark(args, MTCNN(min_face_size=20), dlib)
    if not args.skip_video:
        result["crowd_video"] = video_benchmark(args, dlib)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
