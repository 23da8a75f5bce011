"""How far the detector's landmarks on a tiny face misplace the canonical crop, measured on CelebA.

Each image is detected at full size (the reference landmarks), then shrunk as a whole so its face's
canonical region is s px and centred in a grey frame exactly as the end-to-end protocol does
(`fhsdk.eval.end_to_end.query_frame`), and detected again. The crop the pipeline would cut from the LR
landmarks differs from the one the reference landmarks give by a similarity; this prints its shift (as a
fraction of the crop side), scale change and rotation: their means (the detector's bias on tiny faces)
and the half-widths of uniform draws with their spread, printed as rows of training's `degradation.jitter`
table (`train.degradations`).
CelebA, never LFW (the test set).

    python tools/measure_landmark_jitter.py --data ../shared/data/celeba_subset --images 300 --sizes 12 16
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np

from fhsdk.align import crop_transforms
from fhsdk.detect import MTCNN
from fhsdk.eval.end_to_end import MIN_FACE_SIZE, query_frame, query_landmarks


def crop_error(detected: np.ndarray, reference: np.ndarray) -> tuple[float, float, float, float]:
    """(shift x, shift y as fractions of the side, relative scale change, rotation in degrees) of the crop
    cut from `detected` relative to the crop cut from `reference`, in the reference crop's frame."""
    to_ref = crop_transforms(reference[None], 1)[0]
    to_det = crop_transforms(detected[None], 1)[0]
    # A point of the detected crop (unit side) -> image -> reference crop.
    det_inv = np.linalg.inv(np.vstack([to_det, [0, 0, 1]]))
    m = (np.vstack([to_ref, [0, 0, 1]]) @ det_inv)[:2]
    centre = m[:, :2] @ np.array([0.5, 0.5]) + m[:, 2]
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    return float(centre[0] - 0.5), float(centre[1] - 0.5), scale - 1.0, angle


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default="../shared/data/celeba_subset", help="a CelebA folder (images/, identities.csv)"
    )
    parser.add_argument("--images", type=int, default=300, help="how many images (evenly spread over the folder)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16])
    args = parser.parse_args(argv)

    root = Path(args.data)
    with open(root / "identities.csv") as handle:
        files = [row["image"] for row in csv.DictReader(handle)]
    files = files[:: max(1, len(files) // args.images)][: args.images]
    hr_detector = MTCNN(min_face_size=20)
    lr_detector = MTCNN(min_face_size=MIN_FACE_SIZE["mtcnn"])
    errors = {side: [] for side in args.sizes}
    missed = {side: 0 for side in args.sizes}
    used = 0
    for name in files:
        image = cv2.imread(str(root / name), cv2.IMREAD_COLOR)
        found = hr_detector.detect([image])[0]
        if len(found) == 0:
            continue
        areas = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
        reference = found.landmarks[int(np.argmax(areas))]  # CelebA's person: the largest face
        used += 1
        for side in args.sizes:
            frame = query_frame(image, reference[None], side)
            expected = query_landmarks(image.shape, reference, side)
            lr = lr_detector.detect([frame])[0]
            distance = (
                np.linalg.norm(lr.landmarks.mean(axis=1) - expected.mean(axis=0), axis=1)
                if len(lr)
                else np.array([np.inf])
            )
            if distance.min() > 0.5 * side:  # no detection on that face
                missed[side] += 1
                continue
            errors[side].append(crop_error(lr.landmarks[int(np.argmin(distance))], expected))
    print(f"{used} CelebA images with a reference face ({root})")
    print(
        "| side (px) | found | shift x mean / std | shift y mean / std | scale mean / std | rotation (deg) mean / std | uniform +-a with that std: shift, scale, rotation |"
    )
    print("|---|---|---|---|---|---|---|")
    stats = {}  # side -> (found, mean, std, uniform half-widths of shift, scale, rotation with that std)
    for side in args.sizes:
        e = np.array(errors[side])
        mean, std = e.mean(0), e.std(0)
        shift_std = float(np.sqrt((std[0] ** 2 + std[1] ** 2) / 2))
        stats[side] = (len(e), mean, std, np.sqrt(3) * np.array([shift_std, std[2], std[3]]))
    for side, (found, mean, std, half) in stats.items():
        print(
            f"| {side} | {found}/{used} | {mean[0]:+.3f} / {std[0]:.3f} | {mean[1]:+.3f} / {std[1]:.3f} | "
            f"{mean[2]:+.3f} / {std[2]:.3f} | {mean[3]:+.2f} / {std[3]:.2f} | "
            f"{half[0]:.3f}, {half[1]:.3f}, {half[2]:.1f} |"
        )
    print("\ndegradation.jitter rows (side: [shift x, shift y, scale mean; shift, scale, rotation half-widths]):")
    for side, (_, mean, _, half) in stats.items():
        print(f"  {side}: [{mean[0]:.3f}, {mean[1]:.3f}, {mean[2]:.3f}, {half[0]:.3f}, {half[1]:.3f}, {half[2]:.1f}]")


if __name__ == "__main__":
    main()
