"""Video sources: files, stream URLs, webcams or any iterable of frames, decoded in their own thread."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fhsdk.align import as_bgr_image
from fhsdk.errors import VideoSourceError

_END = object()


@dataclass
class Frame:
    index: int
    timestamp: float
    image: np.ndarray


def _capture_frames(source) -> Iterator[Frame]:
    import cv2

    if isinstance(source, (str, Path)) and "://" not in str(source) and not Path(source).is_file():
        raise VideoSourceError(f"no video file at {source}: check the path (or pass an rtsp:// URL or a webcam index)")
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not capture.isOpened():
        raise VideoSourceError(
            f"cannot open video source {source!r}: the file is not a video OpenCV can decode, or the "
            "stream/camera is unreachable"
        )
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if stamp <= 0 and fps > 0:
                stamp = index / fps
            yield Frame(index, stamp, image)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise VideoSourceError(f"video source {source!r} opened but gave no frames: the file is empty or truncated")


def _iterable_frames(frames: Iterable) -> Iterator[Frame]:
    for index, image in enumerate(frames):
        yield Frame(index, float(index), as_bgr_image(image))


def iterate_source(source) -> Iterator[Frame]:
    """Frames of a file path, URL, webcam index, or iterable of BGR uint8 arrays (in this thread)."""
    if isinstance(source, (str, Path, int)) and not isinstance(source, bool):
        return _capture_frames(source)
    if isinstance(source, np.ndarray):
        raise VideoSourceError("stream() takes a source of frames; for one frame call process(frame)")
    try:
        iterator = iter(source)
    except TypeError:
        raise VideoSourceError(
            f"cannot stream from a {type(source).__name__}: pass a video path, an rtsp:// URL, a webcam index "
            "or an iterable of BGR uint8 frames"
        ) from None
    return _iterable_frames(iterator)


class ThreadedReader:
    """Decodes a source in a background thread into a bounded queue; iterate to get frames.

    Decoding overlaps with inference, the queue bound keeps memory flat, and `close()` (or leaving a
    `with` block) stops the thread. Errors in the decode thread are re-raised in the consumer.
    """

    def __init__(self, source, max_queue: int = 8):
        self._frames = iterate_source(source)
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fhsdk-decode", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if not self._put(frame):
                    return
        except BaseException as error:  # handed to the consumer
            self._put(error)
            return
        self._put(_END)

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ThreadedReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
