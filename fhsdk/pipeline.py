"""fhsdk.Pipeline: detect -> align -> gate -> hallucinate -> embed -> match, over frames and streams.

Faces whose canonical region is smaller than `gate_px` in the frame are warped straight from the frame
to the hallucinator's input side (its own small size for a hallucinator without one, such as bicubic),
hallucinated to the HR side, then embedded; larger faces go straight to the recogniser through
the fused crop+align+resize+normalise kernel (IP-FSRGAN's deployment framework). Every stage runs once
per batch of frames over all their faces.
"""

from __future__ import annotations

import inspect
import logging
import numbers
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from fhsdk import threads as fhsdk_threads
from fhsdk.align import align as align_faces
from fhsdk.align import crop_transforms, region_side_px
from fhsdk.detect import create_detector, detector_class, list_detectors
from fhsdk.embed import (
    DEFAULT_RECOGNIZER,
    PACKAGED_RECOGNIZERS,
    create_lr_recognizer,
    create_recognizer,
    mean_direction,
)
from fhsdk.errors import BackendUnavailableError, ConfigError, ImageReadError, InvalidInputError, NoFaceError
from fhsdk.gallery import Gallery
from fhsdk.hallucinate import PACKAGED_DEFAULT, create_hallucinator, tensor_to_bgr_uint8
from fhsdk.images import as_bgr_image
from fhsdk.results import Face, FrameResult
from fhsdk.shots import ShotChangeDetector
from fhsdk.stage_timer import StageTimer
from fhsdk.track import Tracker
from fhsdk.video import DEFAULT_STALL_TIMEOUT_S, RetryPolicy, ThreadedReader, is_live

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.92  # cosine at a 1% false accept rate on CelebA HR faces (tools/choose_threshold.py)
MIN_LR_SIDE = 8
# The faces Pipeline hallucinates are embedded by both the original recogniser and the adapted one, and the mean
# direction is kept: on held-out people it ranks nearly as well as the adapted one alone and far better than the
# original, names the real clip's performer in as many frames with none wrong, and keeps the demo's face, whose
# cosines the adapted one alone lowers below the threshold (docs/RESULTS.md). Galleries stay the original's.
DEFAULT_LR_RECOGNIZER = "original+adapted"
# Faces whose region is smaller are hallucinated. Chosen on held-out CelebA people end to end (never LFW): with
# the default hallucinator and recognisers, hallucinating beats the straight path at 24 px (rank-1 +6.9 points)
# and 28 px (+1.2) and loses at 32 px (-3.1) (docs/RESULTS.md, the gate).
DEFAULT_GATE_PX = 28.0


class Pipeline:
    def __init__(
        self,
        backend: str = "torch",
        device: str = "cpu",
        detector: str = "mtcnn",
        hallucinator: str = "default",
        recognizer: str = DEFAULT_RECOGNIZER,
        # the recogniser's weights for the faces it hallucinates: 'adapted' (packaged, fhsdk.embed), a
        # fine-tuned state dict's path, 'original' (None) for its own, or several joined by '+' for the mean
        # of their embeddings (the default, 'original+adapted'); galleries always use its own
        lr_recognizer: str | Path | None = DEFAULT_LR_RECOGNIZER,
        gate_px: float = DEFAULT_GATE_PX,
        threshold: float = DEFAULT_THRESHOLD,
        min_face_size: float = 20.0,
        gallery: Gallery | str | Path | None = None,
        gallery_key: str | bytes | None = None,  # for an encrypted gallery file (Gallery.generate_key())
        batch_frames: int = 1,
        track: bool = True,
        fuse: bool = True,
        flip: bool = False,  # flip test-time augmentation: each detected face's embedding averages it and its mirror image
        threads: int | None = None,  # CPU threads of every pool in the process (fhsdk.threads); None: the default
    ):
        if backend not in ("torch", "onnxruntime", "tensorrt", "auto"):
            raise InvalidInputError(f"unknown backend '{backend}': use 'torch', 'onnxruntime', 'tensorrt' or 'auto'")
        if detector not in list_detectors():
            raise InvalidInputError(f"unknown detector '{detector}': choose one of {', '.join(list_detectors())}")
        _check_settings(device, gate_px, threshold, min_face_size, batch_frames, detector)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device '{device}' was asked for but PyTorch sees no CUDA GPU: use device='cpu'"
            )

        self.threads = fhsdk_threads.apply(threads)  # before the stages build their ONNX Runtime sessions
        self.device = device
        self.backend = backend
        # Every stage is built the same way: by name, device and backend (fhsdk.stages).
        self.detector = create_detector(detector, device=device, backend=backend, min_face_size=min_face_size)
        self.hallucinator = _default_or(hallucinator, device, backend)
        self.embedder = create_recognizer(recognizer, device=device, backend=backend)
        self.lr_embedder = _lr_recognizer_or_original(self.embedder, recognizer, lr_recognizer, device, backend)
        self.gate_px = float(gate_px)
        self.threshold = float(threshold)
        self.batch_frames = int(batch_frames)
        self.flip = bool(flip)
        self.tracker = Tracker(fuse=fuse) if track else None
        self.shots = ShotChangeDetector()  # a cut ends every track (fhsdk.shots)
        self._frames_seen = 0
        self._readers: set[ThreadedReader] = set()  # active streams, for stop()
        if gallery is None:
            self.gallery = Gallery(self.embedder.dim, self.embedder.fingerprint)
        elif isinstance(gallery, Gallery):
            self.gallery = gallery
        else:
            self.gallery = Gallery.load(gallery, recognizer_fingerprint=self.embedder.fingerprint, key=gallery_key)

    @classmethod
    def from_config(cls, path: str | Path) -> Pipeline:
        """A pipeline from a YAML file whose keys are this constructor's arguments."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no pipeline config at {path}: write a YAML file of Pipeline arguments")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from error
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a mapping of Pipeline arguments, got {type(values).__name__}")
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return cls(**values)

    # ---- the stages, each usable on its own -------------------------------------------------

    def detect(self, frame) -> list[Face]:
        """Faces in one BGR uint8 frame, best score first."""
        return self._detect_batch([as_bgr_image(frame)])[0]

    def align(self, frame, faces: Sequence[Face], size: int = 16) -> np.ndarray:
        """N x size x size x 3 uint8 crops of the faces' canonical region."""
        landmarks = np.array([f.landmarks for f in faces], dtype=np.float64).reshape(-1, 5, 2)
        return align_faces(frame, landmarks, size)

    def hallucinate(self, crops: np.ndarray) -> np.ndarray:
        """LR crops (any side) -> HR crops of the same region."""
        return self.hallucinator(crops)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """Crops of the canonical region at any side -> N x D unit-norm float32 embeddings."""
        return self.embedder(crops)

    # ---- enrolment ---------------------------------------------------------------------------

    def enroll(self, name: str, images: Sequence | str | Path | np.ndarray, average: bool = True) -> int:
        """Detect the largest face in each image, embed it, and add it to the gallery under `name`.

        With average=True (default) the person's images are merged into one normalised mean embedding.
        Returns how many images were enrolled. An image with no face raises NoFaceError.
        """
        if isinstance(images, (str, Path, np.ndarray)):
            images = [images]
        if images is None or not hasattr(images, "__iter__"):
            raise InvalidInputError(
                f"enroll('{name}', ...) needs an image path, a BGR uint8 array, or a list of "
                f"them; got {type(images).__name__}"
            )
        images = list(images)
        if not images:
            raise InvalidInputError(f"enroll('{name}', []) has no images: pass at least one photo of the person")
        embeddings = []
        for image in images:
            frame = _read_image(image)
            faces = self.detect(frame)
            if not faces:
                where = image if isinstance(image, (str, Path)) else "the given array"
                raise NoFaceError(
                    f"no face found in {where} for '{name}': use a photo where the face is visible and at "
                    f"least {self.detector.min_face_size:g} px wide"
                )
            largest = max(faces, key=lambda f: f.size_px)
            embeddings.append(self._embed_faces(frame, [largest])[0])
        self.gallery.add(name, np.stack(embeddings), average=average)
        return len(embeddings)

    # ---- frames and streams ------------------------------------------------------------------

    def process(self, frame) -> FrameResult:
        """Detect, gate, hallucinate, embed and match the faces of one frame."""
        return self.process_batch([frame])[0]

    def process_batch(
        self,
        frames: Sequence,
        indices: Sequence[int] | None = None,
        timestamps: Sequence[float] | None = None,
        keep_restored: bool = True,
    ) -> list[FrameResult]:
        """`process` for several frames at once; keep_restored=False leaves `Face.restored` unset, saving
        the copy of every hallucinated face back to the host when nobody draws them."""
        frames = [as_bgr_image(f) for f in frames]
        for given, what in ((indices, "indices"), (timestamps, "timestamps")):
            if given is not None and len(given) != len(frames):  # zip() would silently drop frames
                raise InvalidInputError(
                    f"process_batch got {len(frames)} frames but {len(given)} {what}: give one per frame, or none"
                )
        if not frames:
            return []
        timings = StageTimer(self.device)
        with self._timed(timings, "detect"):
            faces_per_frame = self._detect_batch(frames)
        all_faces = [face for faces in faces_per_frame for face in faces]
        if all_faces:
            owner = np.concatenate([np.full(len(faces), i) for i, faces in enumerate(faces_per_frame)])
            embeddings = self._embed_frames(frames, faces_per_frame, owner, timings, keep_restored)
            with self._timed(timings, "match"):
                matches = self.gallery.match(embeddings, self.threshold)
            for face, embedding, match in zip(all_faces, embeddings, matches):
                face.embedding, face.identity, face.similarity = embedding, match.identity, match.similarity
                face.identity_source = "frame" if match.identity is not None else None
        if indices is None:
            indices = list(range(self._frames_seen, self._frames_seen + len(frames)))
        self._frames_seen = max(self._frames_seen, indices[-1] + 1)
        timestamps = list(timestamps) if timestamps is not None else [float(i) for i in indices]
        results = [FrameResult(i, t, faces) for i, t, faces in zip(indices, timestamps, faces_per_frame)]
        if self.tracker is not None:
            with self._timed(timings, "track"):
                for frame, result in zip(frames, results):
                    result.events = self.tracker.update(
                        result.index, result.faces, self.gallery, self.threshold, shot_change=self.shots(frame)
                    )
        per_frame = {stage: seconds / len(frames) for stage, seconds in timings.seconds().items()}
        for result in results:
            result.timings = dict(per_frame)
        return results

    def stream(
        self,
        source,
        batch_frames: int | None = None,
        max_queue: int = 8,
        *,
        retry: RetryPolicy | bool | None = None,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT_S,
        stop_event: threading.Event | None = None,
        on_event: Callable[[dict], None] | None = None,
        keep_images: bool = False,
    ) -> Iterator[FrameResult]:
        """Results for every frame of a video source.

        `source` is a video path, a stream URL (rtsp://, http://, ...), a webcam index, an iterable of BGR
        uint8 frames, or a source factory: a zero-argument callable returning such an iterable (a
        generator function over a camera SDK, say), which the stream calls again to reconnect.

        Decoding runs in its own thread; `batch_frames` frames are processed together (1 = lowest
        latency, larger = higher throughput).

        Sources that can drop (URLs, webcams, factories) are reopened when they fail, end or stall, with
        the backoff of `retry` (a `fhsdk.RetryPolicy`; None = the default policy for those and no
        retry for files and iterables; False = never). Each failure adds an {"event": "source_dropped",
        "attempt": k, "error": ...} event, and the first frame after it an {"event": "source_recovered"}
        one, to the `events` of the next result (and calls `on_event(event)` at once); frame indexes keep
        increasing. After `retry.max_retries` reopenings in a row without a frame it raises
        VideoSourceError. No frame for `stall_timeout` seconds (None: wait forever) counts as a drop, or
        raises VideoSourceError for a source that cannot be reopened.

        The stream ends cleanly after the current batch when `stop_event` is set or `stop()` is called
        (from any thread); breaking out of the loop also stops the decode thread.

        keep_images=True puts each decoded frame on its result (`result.image`) and each hallucinated face
        on its Face (`face.restored`), for drawing; without it neither is copied.

        When a file or an iterable ends, the last result also carries a 'lost' event (reason
        'end_of_stream') for every track still open; for that, each batch's last result of such a source
        is handed out when the next frame has been decoded.
        """
        batch_frames = self.batch_frames if batch_frames is None else batch_frames
        if isinstance(batch_frames, bool) or not isinstance(batch_frames, int) or batch_frames < 1:
            raise InvalidInputError(
                f"batch_frames={batch_frames!r} is invalid: use an integer >= 1 (1 = lowest latency)"
            )
        if self.tracker is not None:
            self.tracker = Tracker(fuse=self.tracker.fuse)  # a new source starts with no tracks
            self.shots.reset()
        reader = ThreadedReader(
            source,
            max_queue=max_queue,
            retry=retry,
            stall_timeout=stall_timeout,
            stop_event=stop_event,
            on_event=on_event,
        )
        self._readers.add(reader)
        try:
            with reader:
                pending, held = [], None
                ends = not is_live(source)  # a camera or URL is reconnected, never ended
                try:
                    for frame in reader:
                        if held is not None:
                            yield held
                            held = None
                        pending.append(frame)
                        if len(pending) == batch_frames:
                            *ready, held = self._process_frames(pending, keep_images)
                            pending = []
                            yield from ready
                            if not ends:
                                yield held
                                held = None
                except Exception:
                    if held is not None:  # every frame before a fault is handed out, then the fault
                        yield held
                    raise
                if pending:
                    *ready, held = self._process_frames(pending, keep_images)
                    yield from ready
                if held is not None:
                    if self.tracker is not None:
                        held.events += self.tracker.finish(held.index)
                    yield held
        finally:
            self._readers.discard(reader)

    def stop(self) -> None:
        """End every stream of this pipeline after its current batch; safe to call from any thread."""
        for reader in list(self._readers):
            reader.stop()

    def _process_frames(self, frames, keep_images: bool = False) -> list[FrameResult]:
        results = self.process_batch(
            [f.image for f in frames],
            [f.index for f in frames],
            [f.timestamp for f in frames],
            keep_restored=keep_images,
        )
        for frame, result in zip(frames, results):
            result.events = frame.events + result.events  # source events first: they happened before the frame
            if keep_images:
                result.image = frame.image
        return results

    # ---- internals ---------------------------------------------------------------------------

    def _detect_batch(self, frames: list[np.ndarray]) -> list[list[Face]]:
        detections = self.detector.detect(frames)
        result = []
        for found in detections:
            if len(found) == 0:
                result.append([])
                continue
            sizes = region_side_px(found.landmarks)
            result.append(
                [
                    Face(
                        box=found.boxes[i],
                        landmarks=found.landmarks[i],
                        score=float(found.scores[i]),
                        size_px=round(float(sizes[i]), 1),
                    )  # 0.1 px: finer is noise, and prints as 15 digits
                    for i in range(len(found))
                ]
            )
        return result

    def _embed_frames(self, frames, faces_per_frame, owner, timings, keep_restored: bool) -> np.ndarray:
        all_faces = [face for faces in faces_per_frame for face in faces]
        sizes = np.array([f.size_px for f in all_faces])
        gated = sizes < self.gate_px
        embeddings = np.empty((len(all_faces), self.embedder.dim), dtype=np.float32)
        if gated.any():
            with self._timed(timings, "align"):
                # A network hallucinator gets every tiny face warped straight from the frame at its input
                # side: one resampling of the frame, as the generator was trained (an HR crop shrunk to s
                # and resized to its input side). A hallucinator without an input side (bicubic, a user's)
                # gets each face at its own size (its real resolution), grouped by side.
                input_side = self.hallucinator.native_side
                if input_side:
                    sides = np.full(len(sizes), int(input_side))
                else:
                    sides = np.clip(np.round(sizes), MIN_LR_SIDE, max(MIN_LR_SIDE, self.gate_px)).astype(int)
                crops = {}
                for side in np.unique(sides[gated]):
                    rows = np.flatnonzero(gated & (sides == side))
                    crops[side] = (
                        rows,
                        np.concatenate(
                            [
                                self.align(frames[i], [all_faces[r] for r in rows[owner[rows] == i]], int(side))
                                for i in np.unique(owner[rows])
                            ]
                        ),
                    )
            with self._timed(timings, "hallucinate"):
                restored_rows, restored = [], []
                for rows, lr in crops.values():
                    restored_rows.append(rows)
                    restored.append(self.hallucinator.hallucinate_tensor(lr))
            with self._timed(timings, "embed"):
                rows, restored = np.concatenate(restored_rows), torch.cat(restored)
                # restored faces stay on the device; the recogniser adapted to them embeds them, if any
                embeddings[rows] = self.lr_embedder.embed_tensor(restored)
                if self.flip:
                    mirrored = self.lr_embedder.embed_tensor(restored.flip(-1))
                    embeddings[rows] = mean_direction(embeddings[rows], mirrored)
            for r in rows:
                all_faces[r].hallucinated = True
            if keep_restored:  # one copy to the host, for the insets
                for r, crop in zip(rows, tensor_to_bgr_uint8(restored)):
                    all_faces[r].restored = crop
        direct = np.flatnonzero(~gated)
        if len(direct):
            with self._timed(timings, "embed"):
                for i in np.unique(owner[direct]):
                    rows = direct[owner[direct] == i]
                    embeddings[rows] = self._embed_faces(frames[i], [all_faces[r] for r in rows], self.flip)
        return embeddings

    def _timed(self, timings: StageTimer, stage: str):
        return timings.stage(stage)

    def _embed_faces(self, frame: np.ndarray, faces: Sequence[Face], flip: bool = False) -> np.ndarray:
        """Straight from the frame to the recogniser: the fused crop+align+resize+normalise kernel.
        With flip, the mirror image of each chip is embedded too (a mirrored warp, no extra copy)."""
        side = self.embedder.input_side
        landmarks = np.array([f.landmarks for f in faces], dtype=np.float64).reshape(-1, 5, 2)
        to_chip = crop_transforms(landmarks, side)
        embeddings = self.embedder.embed_preprocessed(self.embedder.preprocess_frame(frame, to_chip))
        if flip:
            mirror = np.array([[-1.0, 0.0, side - 1.0], [0.0, 1.0, 0.0]])  # chip x -> side - 1 - x
            mirrored = np.einsum("ij,njk->nik", mirror[:, :2], to_chip)
            mirrored[:, :, 2] += mirror[:, 2]
            embeddings = mean_direction(
                embeddings,
                self.embedder.embed_preprocessed(self.embedder.preprocess_frame(frame, np.ascontiguousarray(mirrored))),
            )
        return embeddings


def _check_settings(device, gate_px, threshold, min_face_size, batch_frames, detector) -> None:
    """Refuse settings that would otherwise fail deep inside a stage, or silently name nobody."""

    def number(name, value, low, high):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
            raise ConfigError(f"{name}={value!r} is invalid: use a number in [{low:g}, {high:g}]")

    if not isinstance(device, str) or not (
        device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise ConfigError(f"device={device!r} is invalid: use 'cpu', 'cuda' or 'cuda:N'")
    number("threshold", threshold, -1.0, 1.0)  # a cosine similarity
    number("gate_px", gate_px, 0.0, 4096.0)
    # each detector's floor: MTCNN's 12 px window; RetinaFace enlarges the frame at most 4x
    number("min_face_size", min_face_size, detector_class(detector).MIN_FACE_SIZE_FLOOR, 4096.0)
    if isinstance(batch_frames, bool) or not isinstance(batch_frames, int) or batch_frames < 1:
        raise ConfigError(f"batch_frames={batch_frames!r} is invalid: use an integer >= 1 (1 = lowest latency)")


def _default_or(spec: str, device: str, backend: str):
    if spec == "default" and not PACKAGED_DEFAULT.is_file():  # an install without the model; a damaged one is an error
        log.warning("no default hallucinator is packaged in this install; using bicubic")
        spec = "bicubic"
    return create_hallucinator(spec, device=device, backend=backend)


def _lr_recognizer_or_original(embedder, recognizer: str, spec, device: str, backend: str):
    if spec == DEFAULT_LR_RECOGNIZER and not PACKAGED_RECOGNIZERS["adapted"].is_file():  # as _default_or
        log.warning("no adapted recogniser is packaged in this install; hallucinated faces use the original")
        spec = None
    return create_lr_recognizer(embedder, recognizer, spec, device=device, backend=backend)


def _read_image(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return as_bgr_image(image)
    path = Path(image)
    if not path.is_file():  # reading a FIFO or a device named .jpg would block forever
        raise ImageReadError(
            f"cannot read image {path}: it is missing, or not a regular file (a folder, FIFO or device)"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"cannot read image {path}: {error.strerror or error}; check its permissions") from error
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)  # imdecode refuses what imread decodes in part
    if frame is None:
        raise ImageReadError(f"cannot read image {path}: it is not an image OpenCV can decode")
    if (
        data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-4096:]
    ):  # a JPEG without its end marker (trailers allowed)
        log.warning(
            "%s is a truncated JPEG (no end-of-image marker): the missing part decodes as grey; "
            "enrol a complete copy of the photo",
            path,
        )
    return frame
