"""Contact sheets of a clip, every frame numbered, for labelling ground truth by eye.

Writes PNG sheets of `--per-sheet` tiles (frame index printed on each) to OUTDIR; the labels of
benchmarks/data/hamilton_clip_labels.csv were read off these. The sheets are derived footage: keep
them out of the repository.

    python tools/contact_sheets.py ../shared/data/video/hamilton_clip.mp4 /tmp/sheets [--step 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fhsdk.video import iterate_source


def contact_sheets(
    video: Path, out: Path, step: int = 1, per_sheet: int = 20, columns: int = 5, tile: tuple[int, int] = (320, 180)
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    tiles, written = [], []

    def flush():
        blank = np.zeros((tile[1], tile[0], 3), np.uint8)
        padded = tiles + [blank] * (-len(tiles) % columns)
        sheet = np.vstack([np.hstack(padded[r : r + columns]) for r in range(0, len(padded), columns)])
        path = out / f"sheet_{first:04d}.png"
        cv2.imwrite(str(path), sheet)
        written.append(path)

    for frame in iterate_source(str(video)):
        if frame.index % step:
            continue
        if not tiles:
            first = frame.index
        small = cv2.resize(frame.image, tile, interpolation=cv2.INTER_AREA)
        cv2.putText(small, str(frame.index), (5, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2, cv2.LINE_AA)
        tiles.append(small)
        if len(tiles) == per_sheet:
            flush()
            tiles = []
    if tiles:
        flush()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("out", type=Path, help="folder for the PNG sheets")
    parser.add_argument("--step", type=int, default=1, help="every Nth frame")
    parser.add_argument("--per-sheet", type=int, default=20)
    args = parser.parse_args()
    for path in contact_sheets(args.video, args.out, args.step, args.per_sheet):
        print(path)


if __name__ == "__main__":
    main()
