"""TEST-ONLY helpers. Nothing here is used by real training runs.

`make_center_crop_cache` writes a small face cache from real CelebA photos WITHOUT detection or
alignment: it takes a centred square of each photo and resizes it with OpenCV. CelebA photos are
centred on the person, so these are real faces, but not the canonical aligned region; they exist so
the Dataset and the procedures can be tested quickly and independently of the detector.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from train.data import read_identities, write_cache


def make_center_crop_cache(
    celeba_dir: str | Path, path: str | Path, identities: int = 4, per_identity: int = 4, side: int = 128
) -> Path:
    rows = read_identities(celeba_dir)
    chosen: dict[int, list[str]] = {}
    for name, identity in rows:
        members = chosen.setdefault(identity, []) if len(chosen) < identities or identity in chosen else None
        if members is not None and len(members) < per_identity:
            members.append(name)
    images, labels, files = [], [], []
    for identity, names in chosen.items():
        for name in names:
            frame = cv2.imread(str(Path(celeba_dir) / name), cv2.IMREAD_COLOR)
            height, width = frame.shape[:2]
            half = int(min(height, width) * 0.25)  # a face-sized square, a little above the centre
            cy, cx = max(half, int(height * 0.42)), width // 2
            crop = frame[cy - half : cy + half, cx - half : cx + half]
            images.append(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)[:, :, ::-1])
            labels.append(identity)
            files.append(name)
    write_cache(path, np.stack(images), np.array(labels), files, [], source="TEST-ONLY centre crops, not aligned")
    return Path(path)
