"""What a run leaves behind: an annotated video and a JSON-lines event log."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from fhsdk.errors import VideoSourceError
from fhsdk.results import FrameResult

_KNOWN, _UNKNOWN, _INSET = (60, 200, 60), (60, 60, 230), 64


def annotate(frame: np.ndarray, result: FrameResult) -> np.ndarray:
    """Boxes, names and similarities drawn on a copy of the frame, hallucinated faces as insets."""
    canvas = frame.copy()
    inset_x = 4
    for face in result.faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        colour = _KNOWN if face.identity else _UNKNOWN
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
        label = face.identity or "?"
        if not np.isnan(face.similarity):
            label += f" {face.similarity:.2f}"
        if face.track_id is not None:
            label = f"#{face.track_id} {label}"
        cv2.putText(canvas, label, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
        if face.restored is not None and inset_x + _INSET <= canvas.shape[1] and _INSET + 4 <= canvas.shape[0]:
            inset = cv2.resize(face.restored, (_INSET, _INSET), interpolation=cv2.INTER_AREA)
            canvas[4 : 4 + _INSET, inset_x : inset_x + _INSET] = inset
            cv2.rectangle(canvas, (inset_x, 4), (inset_x + _INSET - 1, 3 + _INSET), colour, 1)
            inset_x += _INSET + 4
    return canvas


class AnnotatedVideoWriter:
    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
        self._writer = cv2.VideoWriter(str(self.path), fourcc, fps, size)
        if not self._writer.isOpened():
            raise VideoSourceError(f"cannot write video {self.path}: use a .mp4 or .avi path in a writable folder")

    def write(self, frame: np.ndarray, result: FrameResult) -> None:
        self._writer.write(annotate(frame, result))

    def close(self) -> None:
        self._writer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EventLog:
    """JSON lines: one object per event ('identified' when a face is first named in a frame run, per identity)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w")

    def write(self, event: dict) -> None:
        self._handle.write(json.dumps(event) + "\n")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
