"""Video sources: files, stream URLs, webcams, source factories or any iterable of frames.

Frames are decoded in their own thread. Sources that can drop (stream URLs, webcam indexes and source
factories, i.e. zero-argument callables returning an iterable of frames) are reopened with backoff
when they fail, end or stall; a stream can be stopped from another thread.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fhsdk.errors import FHSDKError, InvalidInputError, VideoSourceError
from fhsdk.images import as_bgr_image

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT_S = 30.0
_POLL_S = 0.05  # how often a waiting thread looks at its stop flags
_EXIT_WAIT_S = DEFAULT_STALL_TIMEOUT_S + 5  # at most this long, at exit, for decoders still in a native call

# Decode threads that may still be inside OpenCV/FFmpeg (an open or read blocks until its own timeout).
# Python ends daemon threads at exit by unwinding them through that C++ code, which aborts the process
# ("terminate called without an active exception", exit 134): at exit we wait for them instead.
_decoders: weakref.WeakSet[_Decoder] = weakref.WeakSet()


@atexit.register
def _wait_for_decoders() -> None:
    deadline = time.monotonic() + _EXIT_WAIT_S
    for decoder in list(_decoders):
        decoder.stop.set()
        if decoder.thread.is_alive():
            log.info("waiting for a video source's decode thread to leave OpenCV before exiting")
            decoder.thread.join(max(0.0, deadline - time.monotonic()))


@dataclass
class Frame:
    index: int
    timestamp: float
    image: np.ndarray
    events: list[dict] = field(default_factory=list)  # source events (drops, recoveries) just before this frame


@dataclass(frozen=True)
class RetryPolicy:
    """How a source that can drop (stream URL, webcam, source factory) is reopened.

    After a drop the source is reopened after `initial_backoff_s`; each further failure in a row waits
    `multiplier` times longer, at most `max_backoff_s`. A reopening that gives a frame resets the count.
    After `max_retries` reopenings in a row without a frame the stream raises VideoSourceError
    (max_retries=None retries forever).
    """

    max_retries: int | None = 10
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2  # each wait is shortened by up to this fraction, at random: cameras that dropped
    #                      together (a switch rebooting) do not all reconnect in the same instant

    def __post_init__(self):
        if self.max_retries is not None and (
            isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0
        ):
            raise InvalidInputError(
                f"RetryPolicy.max_retries must be an int >= 0, or None to retry forever; got {self.max_retries!r}"
            )
        if not 0 <= self.initial_backoff_s <= self.max_backoff_s:
            raise InvalidInputError("RetryPolicy needs 0 <= initial_backoff_s <= max_backoff_s (seconds)")
        if not self.multiplier >= 1:  # NaN too
            raise InvalidInputError(
                f"RetryPolicy.multiplier must be >= 1 (1 = constant backoff), got {self.multiplier}"
            )
        if not 0 <= self.jitter <= 1:
            raise InvalidInputError(f"RetryPolicy.jitter must lie in [0, 1] (0 = exact waits), got {self.jitter}")

    def backoff(self, failures: int) -> float:
        """Seconds to wait before reopening after `failures` failures in a row (1, 2, ...)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** min(failures - 1, 64))

    def delay(self, failures: int) -> float:
        """The wait actually used: `backoff`, shortened at random by up to `jitter` of it."""
        return self.backoff(failures) * (1.0 - self.jitter * random.random())

    def gives_up(self, failures: int) -> bool:
        return self.max_retries is not None and failures > self.max_retries


# ---- what a source is, and opening it once --------------------------------------------------------


def is_live(source) -> bool:
    """Whether a source can drop and be reopened: a stream URL, a webcam index or a source factory."""
    if isinstance(source, bool):
        return False
    if isinstance(source, int):
        return True
    if isinstance(source, str):
        return "://" in source and not source.lower().startswith("file://")
    return callable(source) and not isinstance(source, (Path, np.ndarray))


def describe(source) -> str:
    """The source, named for messages and events (a URL's password is masked)."""
    if isinstance(source, int) and not isinstance(source, bool):
        return f"webcam {source}"
    if isinstance(source, str) and "://" in source:
        return repr(re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", source))
    if isinstance(source, (str, Path)):
        return repr(str(source))
    if callable(source):
        return f"source factory {getattr(source, '__qualname__', type(source).__name__)}"
    return f"iterable of frames ({type(source).__name__})"


def _retry_policy(source, retry) -> RetryPolicy | None:
    if retry is None:  # default: retry what can drop, never files or one-pass iterables
        return RetryPolicy() if is_live(source) else None
    if retry is False:
        return None
    policy = RetryPolicy() if retry is True else retry
    if not isinstance(policy, RetryPolicy):
        raise InvalidInputError(f"retry must be a RetryPolicy, True, False or None; got {type(retry).__name__}")
    if not is_live(source):
        raise InvalidInputError(
            f"{describe(source)} cannot be reopened, so retry= does not apply to it: retry works for stream URLs, "
            "webcam indexes and source factories (a zero-argument callable returning an iterable of frames)"
        )
    return policy


def _opener(source, timeout_s: float | None = None) -> Callable[[], Iterator[tuple[np.ndarray, float | None]]]:
    """A function that opens the source (once more) and returns its (image, timestamp) pairs.

    Opening happens on the first next(), so in whichever thread decodes. Frames of iterables have no
    timestamp (None): their index stands in for it.
    """
    if isinstance(source, int) and not isinstance(source, bool) and source < 0:  # OpenCV segfaults on -1
        raise InvalidInputError(f"webcam index {source} is invalid: use 0 for the first camera, 1 for the next, ...")
    if isinstance(source, (str, Path, int)) and not isinstance(source, bool):
        return lambda: _capture_frames(source, timeout_s)
    if isinstance(source, np.ndarray):
        raise VideoSourceError("stream() takes a source of frames; for one frame call process(frame)")
    if callable(source):
        return lambda: _factory_frames(source)
    try:
        iterator = iter(source)
    except TypeError:
        raise VideoSourceError(
            f"cannot stream from a {type(source).__name__}: pass a video path, an rtsp:// URL, a webcam index, "
            "an iterable of BGR uint8 frames or a zero-argument callable returning one"
        ) from None
    return lambda: _iterable_frames(iterator)


def _capture_frames(source, timeout_s: float | None = None) -> Iterator[tuple[np.ndarray, float]]:
    name = describe(source)
    is_file = isinstance(source, Path) or (isinstance(source, str) and "://" not in source)
    if is_file:
        path = Path(source)
        if path.is_dir():
            raise VideoSourceError(f"{name} is a directory, not a video file: pass the path of a video inside it")
        if not path.is_file():
            raise VideoSourceError(
                f"no video file at {name}: check the path (or pass an rtsp:// URL or a webcam index)"
            )
        if path.stat().st_size == 0:
            raise VideoSourceError(f"video file {name} is empty (0 bytes): it was not written or copied completely")
        try:  # OpenCV reports an unreadable file as undecodable: say what is wrong
            open(path, "rb").close()
        except OSError as error:
            raise VideoSourceError(
                f"cannot read video file {name}: {error.strerror or error} (errno {error.errno}); check its permissions"
            ) from error
        capture = cv2.VideoCapture(str(path))
    elif isinstance(source, int):
        capture = cv2.VideoCapture(source)
    else:
        # FFmpeg's own timeouts, so that a dead host or a silent stream cannot block a read forever.
        ms = int(1000 * (timeout_s or DEFAULT_STALL_TIMEOUT_S))
        capture = cv2.VideoCapture(
            source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        )
    index = 0
    try:
        if not capture.isOpened():
            if is_file:
                raise VideoSourceError(
                    f"cannot decode video file {name}: it is not a video container OpenCV/FFmpeg can read, or its "
                    "header is corrupt or cut off; check that it plays (ffprobe), or re-encode it"
                )
            raise VideoSourceError(
                f"cannot open video source {name}: the stream or camera is unreachable, refused the connection, "
                "or is not a video; check the URL or index and the network"
            )
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if is_file else 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            stamp = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if stamp <= 0 and fps > 0:
                stamp = index / fps
            yield image, stamp
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise VideoSourceError(
            f"video source {name} opened but gave no frames: the file is empty or cut off, or the stream sent no video"
        )
    if announced > index + 1:  # a truncated file: keep what decoded, but say so (1 frame of slack for estimates)
        log.warning(
            "%s ended after %d of the %d frames its header announces: the file is truncated", name, index, announced
        )


def _iterable_frames(iterator: Iterator) -> Iterator[tuple[np.ndarray, None]]:
    try:
        for image in iterator:
            yield as_bgr_image(image), None
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # a user's generator releases its camera now, not at garbage collection
            close()


def _factory_frames(factory: Callable[[], Iterable]) -> Iterator[tuple[np.ndarray, None]]:
    frames = factory()  # may raise: a camera that is unreachable right now is a drop, retried
    try:
        iterator = iter(frames)
    except TypeError:
        raise InvalidInputError(
            f"{describe(factory)} returned a {type(frames).__name__}, not an iterable of frames: make it return "
            "a generator (or list) of BGR uint8 arrays"
        ) from None
    yield from _iterable_frames(iterator)


def iterate_source(source) -> Iterator[Frame]:
    """Frames of a file path, URL, webcam index, source factory or iterable of BGR uint8 arrays.

    Decodes in the calling thread, one pass, no retry: use ThreadedReader (or Pipeline.stream) for that.
    """
    frames = _opener(source)

    def numbered():
        for index, (image, stamp) in enumerate(frames()):
            yield Frame(index, float(index) if stamp is None else stamp, image)

    return numbered()


# ---- decoding in a thread, with reconnection ---------------------------------------------------


class _Decoder:
    """One opening of a source, decoded in a daemon thread into its own bounded queue.

    A stalled decoder is abandoned rather than joined (a native read may block until its own timeout):
    its stop flags make it exit, and release the source, as soon as that read returns.
    """

    def __init__(self, open_frames, max_queue: int, stop_flags: tuple[threading.Event, ...]):
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.stop = threading.Event()
        self._flags = (self.stop,) + stop_flags
        self.thread = threading.Thread(target=self._run, args=(open_frames,), name="fhsdk-decode", daemon=True)
        self.thread.start()
        _decoders.add(self)

    def _stopped(self) -> bool:
        return any(flag.is_set() for flag in self._flags)

    def _put(self, item) -> bool:
        while not self._stopped():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, open_frames) -> None:
        frames = None
        try:
            frames = open_frames()
            for frame in frames:
                if not self._put(("frame", frame)):
                    return
            self._put(("end", None))
        except BaseException as error:  # handed to the consumer, which knows the source and frame index
            self._put(("error", error))
        finally:
            if frames is not None:
                try:
                    frames.close()
                except Exception:  # a failing cleanup must not hide the stream's own outcome
                    log.debug("closing a video source failed", exc_info=True)


class ThreadedReader:
    """Decodes a source in a background thread into a bounded queue; iterate to get frames.

    Decoding overlaps with inference and the queue bound keeps memory flat. Sources that can drop are
    reopened under `retry` (a RetryPolicy; default: stream URLs, webcams and source factories are
    retried, files and iterables are not), with a "source_dropped" event per failure and a
    "source_recovered" event when frames flow again, attached to the next Frame and passed to
    `on_event`. `stall_timeout` seconds without a frame count as a drop (or, for a source that cannot be
    reopened, raise VideoSourceError). `stop()` (any thread) or `stop_event` ends the iteration cleanly;
    `close()` (or leaving a `with` block) also stops the decode thread. Errors in the decode thread are
    raised in the consumer with the frame index and the original error as `__cause__`.
    """

    def __init__(
        self,
        source,
        max_queue: int = 8,
        retry: RetryPolicy | bool | None = None,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT_S,
        stop_event: threading.Event | None = None,
        on_event: Callable[[dict], None] | None = None,
    ):
        if (
            isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1
        ):  # 0 means unbounded to queue.Queue
            raise InvalidInputError(f"max_queue must be an int >= 1 (frames decoded ahead), got {max_queue!r}")
        if stall_timeout is not None and not stall_timeout > 0:
            raise InvalidInputError(f"stall_timeout must be > 0 seconds, or None to wait forever; got {stall_timeout}")
        self.name = describe(source)
        self.policy = _retry_policy(source, retry)
        self.stall_timeout = stall_timeout
        self._open = _opener(source, stall_timeout)
        self._max_queue = max_queue
        self._on_event = on_event
        self._halt = threading.Event()
        self._flags = (self._halt,) if stop_event is None else (self._halt, stop_event)
        self.threads: list[threading.Thread] = []  # decode threads not yet finished, abandoned ones included
        self._decoder = self._start()

    def _start(self) -> _Decoder:
        decoder = _Decoder(self._open, self._max_queue, self._flags)
        # only live threads are kept: a stream that reconnects for months must not pile up dead ones
        self.threads = [thread for thread in self.threads if thread.is_alive()] + [decoder.thread]
        return decoder

    def _stopping(self) -> bool:
        return any(flag.is_set() for flag in self._flags)

    def _next(self, decoder: _Decoder) -> tuple[str, object]:
        deadline = None if self.stall_timeout is None else time.monotonic() + self.stall_timeout
        while not self._stopping():
            try:
                return decoder.queue.get(timeout=_POLL_S)
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline:
                    return "stall", None
        return "stopped", None

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping() and time.monotonic() < end:
            self._halt.wait(min(_POLL_S, max(0.0, end - time.monotonic())))

    def _emit(self, events: list[dict], kind: str, **fields) -> None:
        event = {"event": kind, "source": self.name, **fields}  # the key tracking events use too
        log.log(logging.WARNING if kind == "source_dropped" else logging.INFO, "%s", event)
        events.append(event)
        if self._on_event is not None:
            self._on_event(event)

    def _failure(self, kind: str, payload, index: int) -> BaseException:
        """What went wrong, as an exception: the decode thread's own, or one describing an end or stall."""
        if kind == "error":
            return payload
        if kind == "stall":
            return VideoSourceError(
                f"video source {self.name} stalled: no frame for {self.stall_timeout:g} s at frame {index}; check the "
                "source, or pass a larger stall_timeout (None waits forever)"
            )
        return VideoSourceError(f"video source {self.name} ended at frame {index}")

    def __iter__(self) -> Iterator[Frame]:
        index, failures, offset, last_stamp = 0, 0, 0.0, 0.0
        events: list[dict] = []
        started = dropped_at = time.monotonic()
        while True:
            decoder = self._decoder
            kind, payload = self._next(decoder)
            if kind == "frame":
                image, stamp = payload
                if failures:
                    self._emit(
                        events,
                        "source_recovered",
                        attempts=failures,
                        frame_index=index,
                        downtime_s=round(time.monotonic() - dropped_at, 3),
                    )
                    failures = 0
                last_stamp = float(index) if stamp is None else offset + stamp
                yield Frame(index, last_stamp, image, events)
                events, index = [], index + 1
                continue
            decoder.stop.set()  # a stalled decoder exits by itself once its blocked read returns
            if kind == "stopped" or (kind == "end" and self.policy is None):
                return
            cause = self._failure(kind, payload, index)
            if isinstance(cause, InvalidInputError):  # a bad frame is a bug in the source, not a drop
                raise InvalidInputError(f"frame {index} from {self.name} is not a valid image: {cause}") from cause
            if self.policy is None:
                if isinstance(cause, FHSDKError):
                    raise cause  # our own error: it already says what went wrong, and where
                raise VideoSourceError(
                    f"video source {self.name} raised {type(cause).__name__} at frame {index}: {cause} "
                    "(the original error is chained below); fix the source, or pass a zero-argument callable "
                    "that reopens it so that the stream can retry"
                ) from cause
            failures += 1
            if failures == 1:
                dropped_at = time.monotonic()
            gives_up = self.policy.gives_up(failures)
            delay = None if gives_up else self.policy.delay(failures)
            self._emit(
                events,
                "source_dropped",
                attempt=failures,
                frame_index=index,
                error=f"{type(cause).__name__}: {cause}",
                retry_in_s=delay,
            )
            if gives_up:
                raise VideoSourceError(
                    f"video source {self.name} failed {failures} attempts in a row, last with "
                    f"{type(cause).__name__}: {cause}; check that it is reachable, or allow more attempts with "
                    "RetryPolicy(max_retries=...)"
                ) from cause
            self._wait(delay)
            if self._stopping():
                return
            # Timestamps keep increasing: a reopened source counts from the later of its last timestamp
            # and the wall-clock time since the stream started.
            offset = max(last_stamp, time.monotonic() - started)
            self._decoder = self._start()

    def stop(self) -> None:
        """Ask the stream to end after the frame in hand; safe to call from any thread."""
        self._halt.set()

    def close(self) -> None:
        self.stop()
        if not self._decoder.stop.is_set():  # set: it ended, failed or stalled, and is not waited for
            self._decoder.thread.join(timeout=2)

    def __enter__(self) -> ThreadedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_info(source) -> tuple[float | None, int | None]:
    """(frames per second, frame count) from a video file's header; (None, None) for other sources
    or where the header does not say."""
    if is_live(source) or not isinstance(source, (str, Path)) or not Path(source).is_file():
        return None, None
    capture = cv2.VideoCapture(str(source))
    try:
        fps, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return (fps if fps > 0 else None), (count if count > 0 else None)
