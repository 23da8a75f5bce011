"""Derive fhsdk.align's canonical 5-point template from dlib's face-chip geometry.

The canonical face region is the region dlib's ResNet recogniser was trained on: the chip that
`dlib.get_face_chip(img, shape5, size=150, padding=0.25)` extracts. We express it as where five
landmarks in MTCNN's convention (eye centres, nose tip, mouth corners) fall inside that chip, averaged
over CelebA training faces (never LFW):

    python tools/derive_align_template.py --data ../shared/data --landmarks mtcnn --limit 1500

`--landmarks retinaface` places fhsdk's RetinaFace landmarks instead (to compare the two detectors'
conventions); `--landmarks dlib68` takes the points from dlib's 68-point predictor instead of fhsdk's MTCNN
(eye centre = mean of the six eye points, nose tip = 30, mouth corners = 48 and 54).
Needs dlib-bin (a dev dependency); the result is pasted into fhsdk/align.py.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fhsdk.weights import package_file

CHIP = 150
PADDING = 0.25


def chip_to_image_affine(details) -> np.ndarray:
    """2x3 matrix taking chip pixel coordinates to source image coordinates (dlib's extract_image_chip)."""
    rect = details.rect
    scale = rect.width() / details.cols
    cos, sin = math.cos(details.angle), math.sin(details.angle)
    linear = scale * np.array([[cos, -sin], [sin, cos]])
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    offset = centre - linear @ np.full(2, (details.cols - 1) / 2)
    return np.hstack([linear, offset[:, None]])


def main() -> None:
    import dlib

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--landmarks", choices=["mtcnn", "retinaface", "dlib68"], default="mtcnn")
    parser.add_argument("--limit", type=int, default=1500)
    args = parser.parse_args()

    root = args.data / "celeba_subset"
    with open(root / "identities.csv") as handle:
        files = [root / row["image"] for row in csv.DictReader(handle)]
    files = files[:: max(1, len(files) // args.limit)][: args.limit]

    hog = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(
        str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat"))
    )
    sp68 = dlib.shape_predictor(
        str(package_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat"))
    )
    mtcnn = None  # the fhsdk detector whose landmarks are placed in the chip
    if args.landmarks == "mtcnn":
        from fhsdk.detect.mtcnn import MTCNN

        mtcnn = MTCNN(min_face_size=20)
    elif args.landmarks == "retinaface":
        from fhsdk.detect.retinaface import RetinaFace

        mtcnn = RetinaFace(upscale=1)

    points_in_chip = []
    for path in tqdm(files, desc="faces"):
        bgr = cv2.imread(str(path))
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = hog(rgb, 1)
        if len(boxes) != 1:
            continue
        box = boxes[0]
        details = dlib.get_face_chip_details(sp5(rgb, box), CHIP, PADDING)
        if mtcnn is not None:
            found = mtcnn.detect(bgr)[0]
            centre = np.array([(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2])
            if len(found.boxes) == 0:
                continue
            mid = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
            best = int(np.argmin(np.linalg.norm(mid - centre, axis=1)))
            if np.linalg.norm(mid[best] - centre) > 0.3 * box.width():
                continue
            five = found.landmarks[best].astype(np.float64)
        else:
            shape = sp68(rgb, box)
            p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
            five = np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
        to_image = np.vstack([chip_to_image_affine(details), [0, 0, 1]])
        to_chip = np.linalg.inv(to_image)[:2]
        points_in_chip.append(five @ to_chip[:, :2].T + to_chip[:, 2])

    points = np.stack(points_in_chip) / CHIP
    template = np.median(points, axis=0)
    spread = points.std(axis=0)
    print(f"faces used: {len(points)}")
    print("template (x, y) as fractions of the region side:")
    for name, (x, y), (sx, sy) in zip(["eye_l", "eye_r", "nose", "mouth_l", "mouth_r"], template, spread):
        print(f"  {name:8s} ({x:.4f}, {y:.4f})   std ({sx:.4f}, {sy:.4f})")
    print("np.array(" + np.array2string(template, precision=4, separator=", ") + ")")


if __name__ == "__main__":
    main()
