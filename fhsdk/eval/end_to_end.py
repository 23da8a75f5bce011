"""The end-to-end LFW protocol: queries as a camera sees them, run through `Pipeline` itself.

The aligned-crop protocol (`harness.evaluate_lfw`) aligns each query on its HR image and shrinks the
crop, so its landmarks are perfect. Here the whole query image is shrunk (area interpolation, as a
distant camera integrates light) so that its face's canonical region is s px, placed at the centre of a
grey frame of side `FRAME_SIDES` x s, and handed to `Pipeline.process_batch`: the pipeline detects the
face on the tiny frame, aligns it from its own LR landmarks, gates, hallucinates and embeds it. The
query's face is the detection whose box holds the image's centre (as for the HR landmarks); an image
where there is none is a detection miss, which counts as a failure (a wrong verification decision, a
missed identification) and is reported separately. Galleries and first images are HR, embedded by the
pipeline's recogniser exactly as the aligned-crop protocol does, so the two protocols differ only in
how queries reach the recogniser.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fhsdk.align import region_side_px
from fhsdk.eval.harness import EvalConfig, EvalResult, central_face, prepare_protocol, protocol_meta, read_image
from fhsdk.pipeline import Pipeline

FRAME_SIDES = 6  # the frame is 6 s x 6 s: about three times the shrunk 250 px LFW image each way
FRAME_GREY = 128
# Queries are 8-32 px regions, so each detector looks for the smallest faces it can: MTCNN's 12 px window
# (a box, about a 16 px region), RetinaFace's tiny-face mode down to 8 px regions.
MIN_FACE_SIZE = {"mtcnn": 12.0, "retinaface": 8.0}
BATCH_FRAMES = 64


def query_frame(image: np.ndarray, landmarks: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk so its face's canonical region is `side` px, centred in a grey frame."""
    factor = side / float(region_side_px(landmarks)[0])
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA
    )
    frame_side = FRAME_SIDES * side
    frame = np.full((frame_side, frame_side, 3), FRAME_GREY, dtype=np.uint8)
    # Centre the shrunk image; one larger than the frame is cropped around its centre (background only).
    h, w = min(small.shape[0], frame_side), min(small.shape[1], frame_side)
    top, left = (frame_side - h) // 2, (frame_side - w) // 2
    crop_top, crop_left = (small.shape[0] - h) // 2, (small.shape[1] - w) // 2
    frame[top : top + h, left : left + w] = small[crop_top : crop_top + h, crop_left : crop_left + w]
    return frame


def query_landmarks(image_shape: tuple[int, int], landmarks: np.ndarray, side: int) -> np.ndarray:
    """Where `query_frame` puts an image's 5 HR landmarks in its frame (same rounding and centring):
    the true place of the face a detector should find there."""
    factor = side / float(region_side_px(landmarks)[0])
    height, width = image_shape[:2]
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    frame_side = FRAME_SIDES * side
    h, w = min(new_h, frame_side), min(new_w, frame_side)
    top, left = (frame_side - h) // 2 - (new_h - h) // 2, (frame_side - w) // 2 - (new_w - w) // 2
    scale = np.array([new_w / width, new_h / height])
    return (np.asarray(landmarks, dtype=np.float64).reshape(5, 2) + 0.5) * scale - 0.5 + np.array([left, top])


def make_pipeline(
    hallucinator: str,
    detector: str = "mtcnn",
    gate_px: float | None = None,
    flip: bool = False,
    device: str = "cpu",
    backend: str = "torch",
    lr_recognizer: str | Path | None = None,
):
    """The pipeline this protocol measures: as a user builds it (gate_px, lr_recognizer None: Pipeline's
    defaults), with the smallest detectable face and no tracking (every query is a separate still)."""
    gate = {} if gate_px is None else {"gate_px": gate_px}
    lr = {} if lr_recognizer is None else {"lr_recognizer": lr_recognizer}
    return Pipeline(
        backend=backend,
        device=device,
        detector=detector,
        hallucinator=hallucinator,
        min_face_size=MIN_FACE_SIZE.get(detector, 12.0),
        track=False,
        flip=flip,
        **gate,
        **lr,
    )


def evaluate_lfw_pipeline(config: EvalConfig, pipeline, detector_name: str) -> EvalResult:
    """The end-to-end protocol for one configured `Pipeline` (its detector, hallucinator, gate and options)."""
    started = time.time()
    protocol = prepare_protocol(config, pipeline.embedder)
    names = [protocol.images[i] for i in protocol.queries]
    hr_landmarks = protocol.landmarks.landmarks[protocol.queries]
    hr_embeddings = protocol.gallery[protocol.queries]  # the ceiling: each query's own HR chip

    rows = [protocol.row(config, "HR", None, hr_embeddings, hr_embeddings)]
    label = _label(pipeline)
    for side in tqdm(config.sizes, desc=f"sides ({label})"):
        embeddings = np.zeros_like(hr_embeddings)
        found = np.zeros(len(names), dtype=bool)
        hallucinated = np.zeros(len(names), dtype=bool)
        measured_side = np.full(len(names), np.nan)
        for start in tqdm(
            range(0, len(names), BATCH_FRAMES), desc=f"pipeline {side}px", leave=False, unit_scale=BATCH_FRAMES
        ):
            frames = [
                query_frame(read_image(protocol.root / "images" / name), hr_landmarks[i : i + 1], side)
                for i, name in enumerate(names[start : start + BATCH_FRAMES], start)
            ]
            for offset, (frame, result) in enumerate(zip(frames, pipeline.process_batch(frames, keep_restored=False))):
                face = _query_face(result.faces, frame.shape[:2])
                if face is not None:
                    row = start + offset
                    embeddings[row], found[row] = face.embedding, True
                    hallucinated[row], measured_side[row] = face.hallucinated, face.size_px
        row = protocol.row(config, f"LR {side}px", side, embeddings, hr_embeddings, found=found)
        row["queries_found"] = float(found.mean())
        row["hallucinated"] = float(hallucinated[found].mean()) if found.any() else 0.0
        row["detected_side_median"] = float(np.nanmedian(measured_side)) if found.any() else None
        rows.append(row)
    meta = {
        "protocol": "pipeline",
        "hallucinator": label,
        "detector": detector_name,
        "gate_px": pipeline.gate_px,
        "lr_recognizer": pipeline.lr_embedder.name,
        "min_face_size": pipeline.detector.min_face_size,
        "frame": f"{FRAME_SIDES} s x {FRAME_SIDES} s, grey {FRAME_GREY}",
        "queries": len(names),
        **protocol_meta(config, protocol, pipeline.embedder, started),
    }
    return EvalResult(rows, meta)


def _query_face(faces, shape: tuple[int, int]):
    """The detection whose box holds the frame's centre (where the LFW image's centre is), nearest first."""
    if not faces:
        return None
    boxes = np.array([f.box for f in faces], dtype=np.float64)
    index = central_face(boxes, np.arange(len(faces)), shape)
    return None if index is None else faces[int(index)]


def _label(pipeline) -> str:
    if pipeline.gate_px <= 0:
        return "none (gate_px=0)"
    adapted = "" if pipeline.lr_embedder is pipeline.embedder else f", {pipeline.lr_embedder.name}"
    return f"{pipeline.hallucinator.name} (gate_px={pipeline.gate_px:g}{adapted})"
