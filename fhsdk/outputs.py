"""What a run leaves behind: an annotated video and a JSON-lines event log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from fhsdk.errors import OutputError, VideoSourceError
from fhsdk.results import FrameResult

_KNOWN, _UNKNOWN = (60, 200, 60), (60, 60, 230)
_MIN_DRAWN_SIDE = 360  # smaller frames are drawn enlarged (whole pixels), so that labels stay legible
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def drawing_scale(width: int, height: int) -> int:
    """Whole-number enlargement at which a width x height frame is annotated (1 from 360 px up)."""
    return max(1, math.ceil(_MIN_DRAWN_SIDE / max(1, min(width, height))))


def face_label(face, threshold: float | None = None) -> str:
    """'#3 alice 0.95', '#3 alice 0.93 (track)' when the name needs the track's evidence, or '#4 ? 0.88<0.92'."""
    label = f"#{face.track_id} " if face.track_id is not None else ""
    similarity = "" if np.isnan(face.similarity) else f" {face.similarity:.2f}"
    if face.identity:
        return label + face.identity + similarity + (" (track)" if face.identity_source == "track" else "")
    hint = f"<{threshold:.2f}" if similarity and threshold is not None else ""
    return label + "?" + similarity + hint


def annotate(frame: np.ndarray, result: FrameResult, threshold: float | None = None, scale: int = 1) -> np.ndarray:
    """Boxes, names and similarities drawn on a copy of the frame (enlarged `scale` times), hallucinated
    faces as insets. A name needing the track's evidence is marked "(track)"; an unknown face shows its
    similarity against the threshold ("? 0.88<0.92")."""
    canvas = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) if scale > 1 else frame.copy()
    height, width = canvas.shape[:2]
    font = max(0.35, 0.5 * height / 720)  # a readable fraction of the frame: 0.35 at 360 px, 0.75 at 1080p
    stroke = max(1, round(height / 540))
    inset = int(np.clip(height // 6, 24, 128))  # a sixth of the frame's height, never past the HR crop's side
    inset_x = 4
    for face in result.faces:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in face.box)
        colour = _KNOWN if face.identity else _UNKNOWN
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, stroke)
        label = face_label(face, threshold)
        (text_w, text_h), _ = cv2.getTextSize(label, _FONT, font, stroke)
        origin = (int(np.clip(x1, 0, max(0, width - text_w))), max(text_h + 2, y1 - 3))
        cv2.putText(canvas, label, origin, _FONT, font, colour, stroke, cv2.LINE_AA)
        if face.restored is not None and inset_x + inset <= width and inset + 4 <= height:
            canvas[4 : 4 + inset, inset_x : inset_x + inset] = cv2.resize(
                face.restored, (inset, inset), interpolation=cv2.INTER_AREA
            )
            cv2.rectangle(canvas, (inset_x, 4), (inset_x + inset - 1, 3 + inset), colour, 1)
            inset_x += inset + 4
    return canvas


class AnnotatedVideoWriter:
    """Annotated frames to a video file at the source's frame rate.

    Frames under 360 px are drawn enlarged by a whole factor; an odd side gets one black line more
    (the encoders need even sides), so no pixel of the source is lost. `size` is the written size.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], threshold: float | None = None):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError.writing("the video", self.path, error) from error
        self.threshold = threshold
        self.scale = drawing_scale(*size)
        self.size = tuple(side * self.scale + (side * self.scale) % 2 for side in size)
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
        self._writer = cv2.VideoWriter(str(self.path), fourcc, fps, self.size)
        if not self._writer.isOpened():
            raise VideoSourceError(f"cannot write video {self.path}: use a .mp4 or .avi path in a writable folder")

    def write(self, frame: np.ndarray, result: FrameResult) -> None:
        canvas = annotate(frame, result, self.threshold, self.scale)
        pad_y, pad_x = self.size[1] - canvas.shape[0], self.size[0] - canvas.shape[1]
        if pad_x or pad_y:
            canvas = cv2.copyMakeBorder(canvas, 0, max(pad_y, 0), 0, max(pad_x, 0), cv2.BORDER_CONSTANT)
        self._writer.write(canvas[: self.size[1], : self.size[0]])

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w")
        except OSError as error:
            raise OutputError.writing("events", self.path, error) from error

    def write(self, event: dict) -> None:
        self._handle.write(json.dumps(event) + "\n")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class IdentityLog:
    """In which frames each identity was named: frame ranges, and how many names needed the track."""

    def __init__(self):
        self._frames: dict[str, list[int]] = {}
        self._from_track: dict[str, int] = {}

    def add(self, result: FrameResult) -> None:
        for name in {f.identity for f in result.faces if f.identity}:
            self._frames.setdefault(name, []).append(result.index)
            faces = [f for f in result.faces if f.identity == name]
            self._from_track[name] = self._from_track.get(name, 0) + all(f.identity_source == "track" for f in faces)

    def summary(self) -> dict[str, dict]:
        """{identity: {"frames": n, "frames_from_track": k, "ranges": [[first, last], ...]}}"""
        out = {}
        for name, indexes in sorted(self._frames.items()):
            ranges: list[list[int]] = []
            for index in indexes:
                if ranges and index == ranges[-1][1] + 1:
                    ranges[-1][1] = index
                else:
                    ranges.append([index, index])
            out[name] = {"frames": len(indexes), "frames_from_track": self._from_track[name], "ranges": ranges}
        return out
