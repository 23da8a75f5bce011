"""The low-resolution LFW evaluation: how well a hallucinator lets the recogniser identify tiny faces.

Protocol (Lai et al.): the first image of each View 2 pair is the HR gallery face, aligned at the
recogniser's chip; the second is the query, aligned to the HR crop, degraded to an LR crop of side s,
restored by the hallucinator, embedded and compared by cosine. The HR row (the query's HR crop,
unchanged) is the ceiling. Rank-1 identification uses identities with >= 4 images: per run one random
HR gallery image per identity, every other image an LR query.

Detection and landmarks are computed once per image and cached (a quick run detects only the images
its folds use; later runs reuse them); HR embeddings are cached per recogniser. Everything runs in batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fhsdk.align import ALIGN_VERSION, CANONICAL_TEMPLATE, HR_SIDE, LR_SIDES, RECOGNIZER_SIDE, align, interocular_px
from fhsdk.degrade import degrade
from fhsdk.detect.mtcnn import MTCNN
from fhsdk.errors import ConfigError, ImageReadError
from fhsdk.eval import metrics
from fhsdk.eval.protocol import check_lfw_dir, identification_images, read_pairs
from fhsdk.files import atomic_path
from fhsdk.hallucinate import BicubicHallucinator
from fhsdk.weights import cache_dir

log = logging.getLogger(__name__)

CHUNK = 256


@dataclass
class EvalConfig:
    data: Path
    sizes: tuple[int, ...] = LR_SIDES
    degradation: str = "bicubic"
    folds: int | None = None  # evaluate only the first k folds (quick runs); None = all 10
    identification: bool = True
    max_identities: int | None = None
    runs: int = 10
    seed: int = 0
    batch_size: int = 64
    psnr_limit: int = 1000  # PSNR/SSIM on this many query crops (they are slow and stable)
    flip: bool = False  # embed each query and its mirror image, average (Lai et al.'s flip test-time augmentation)
    # Aligned protocol: sides at or above it take Pipeline's path for faces that large (no hallucination,
    # the original recogniser), so a row measures the system rather than the model; None: every side is hallucinated.
    gate_px: float | None = None


@dataclass
class LandmarkSet:
    landmarks: np.ndarray  # N x 5 x 2
    detected: np.ndarray  # bool: False where the fallback (mean face) was used


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError(f"cannot read image {path}: the file is missing or not an image")
    return image


def central_face(boxes: np.ndarray, landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """The face LFW is about: the detection nearest the image centre whose box contains it."""
    if len(boxes) == 0:
        return None
    centre = np.array([shape[1] / 2, shape[0] / 2])
    contains = (
        (boxes[:, 0] <= centre[0])
        & (boxes[:, 2] >= centre[0])
        & (boxes[:, 1] <= centre[1])
        & (boxes[:, 3] >= centre[1])
    )
    if not contains.any():
        return None
    distance = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1)
    distance[~contains] = np.inf
    return landmarks[int(np.argmin(distance))]


def detect_landmarks(root: Path, images: list[str], detector=None, batch: int = 16) -> LandmarkSet:
    """Landmarks of the central face of every image; each image's detection is cached on disk per
    detector, so only images no earlier run has seen are detected."""
    detector = detector or MTCNN(min_face_size=20)
    key = hashlib.sha256(repr(getattr(detector, "config", type(detector).__name__)).encode())
    cache = cache_dir() / f"lfw_landmarks_by_image_{key.hexdigest()[:16]}.npz"
    known: dict[str, tuple[np.ndarray, bool]] = {}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            known = {
                str(n): (marks, bool(d))
                for n, marks, d in zip(stored["names"], stored["landmarks"], stored["detected"])
            }
    missing = [name for name in dict.fromkeys(images) if name not in known]
    for start in tqdm(
        range(0, len(missing), batch), desc="detect (cached after)", unit_scale=batch, disable=not missing
    ):
        names = missing[start : start + batch]
        frames = [read_image(root / "images" / name) for name in names]
        for name, frame, found in zip(names, frames, detector.detect(frames)):
            face = central_face(found.boxes, found.landmarks, frame.shape[:2])
            known[name] = (np.zeros((5, 2)) if face is None else np.asarray(face, np.float64), face is not None)
    if missing:
        names = sorted(known)
        with atomic_path(cache) as tmp:
            np.savez(
                tmp,
                names=np.array(names),
                landmarks=np.stack([known[n][0] for n in names]),
                detected=np.array([known[n][1] for n in names]),
            )
    landmarks = np.stack([known[name][0] for name in images]) if images else np.zeros((0, 5, 2))
    detected = np.array([known[name][1] for name in images], dtype=bool)
    if detected.any():
        # Fallback for missed faces: the mean landmarks of found ones (LFW centres every face).
        landmarks[~detected] = landmarks[detected].mean(axis=0)
    return LandmarkSet(landmarks, detected)


def aligned_crops(
    root: Path, images: list[str], landmarks: np.ndarray, sides: tuple[int, ...], desc: str
) -> dict[int, np.ndarray]:
    """Aligned crops of every image at each side, read and aligned in chunks."""
    crops = {side: np.empty((len(images), side, side, 3), dtype=np.uint8) for side in sides}
    for start in tqdm(range(0, len(images), CHUNK), desc=desc, unit_scale=CHUNK):
        for offset, name in enumerate(images[start : start + CHUNK]):
            frame = read_image(root / "images" / name)
            for side in sides:
                crops[side][start + offset] = align(frame, landmarks[start + offset], side)[0]
    return crops


def embed_all(embedder, crops: np.ndarray, desc: str) -> np.ndarray:
    out = np.empty((len(crops), embedder.dim), dtype=np.float32)
    for start in tqdm(range(0, len(crops), CHUNK), desc=desc, unit_scale=CHUNK, leave=False):
        out[start : start + CHUNK] = embedder(crops[start : start + CHUNK])
    return out


def restore_all(hallucinator, lr: np.ndarray, desc: str) -> np.ndarray:
    out = None
    for start in tqdm(range(0, len(lr), CHUNK), desc=desc, unit_scale=CHUNK, leave=False):
        sr = hallucinator(lr[start : start + CHUNK])
        if out is None:
            out = np.empty((len(lr),) + sr.shape[1:], dtype=np.uint8)
        out[start : start + len(sr)] = sr
    return out


@dataclass
class EvalResult:
    rows: list[dict]
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"meta": self.meta, "rows": self.rows}, indent=2)


@dataclass
class Protocol:
    """What both LFW protocols share: the images, the pairs and identities as indices into them, the
    HR landmarks, the HR gallery embeddings of every image, and the queries (images seen at low resolution)."""

    root: Path
    images: list[str]
    landmarks: LandmarkSet
    gallery: np.ndarray  # HR embedding (recogniser chip) of every image
    pair_first: np.ndarray
    pair_second: np.ndarray
    same: np.ndarray
    fold: np.ndarray
    ident_index: np.ndarray
    ident_labels: np.ndarray
    queries: np.ndarray  # indices into images
    query_slot: np.ndarray  # image index -> row among the queries (-1: not a query)

    def row(
        self,
        config: EvalConfig,
        label: str,
        side: int | None,
        query_embeddings: np.ndarray,
        hr_query_embeddings: np.ndarray,
        found: np.ndarray | None = None,
    ) -> dict:
        """Verification and identification of these query embeddings (one row per query) against the
        HR gallery. `found`: per query, whether the query's face was found at all; a query that was not
        is a failure (a wrong decision in verification, a miss in identification)."""
        detection_counted = found is not None
        found = np.ones(len(self.queries), dtype=bool) if found is None else found
        first, second = self.gallery[self.pair_first], self.query_slot[self.pair_second]
        pair_found = found[second]
        scores = np.einsum("nd,nd->n", first, query_embeddings[second])
        scores[~pair_found] = -np.inf  # never accepted
        accuracy, accuracy_std, _ = metrics.kfold_accuracy(scores, self.same, self.fold, valid=pair_found)
        row = {
            "query": label,
            "lr_side": side,
            "interocular_px": round(interocular_px(side if side else HR_SIDE), 2),
            "accuracy": accuracy,
            "accuracy_std": accuracy_std,
            "vr_at_far_0.1%": metrics.verification_rate(scores, self.same, 1e-3),
            "identity_cosine": float(np.einsum("nd,nd->n", query_embeddings[found], hr_query_embeddings[found]).mean()),
        }
        if detection_counted:
            row["pairs_found"] = float(pair_found.mean())
            row["accuracy_found_pairs"] = metrics.kfold_accuracy(
                scores[pair_found], self.same[pair_found], self.fold[pair_found]
            )[0]
        if len(self.ident_index):
            slots = self.query_slot[self.ident_index]
            row["rank1"], row["rank1_std"] = metrics.rank1_identification(
                self.gallery[self.ident_index],
                query_embeddings[slots],
                self.ident_labels,
                config.runs,
                config.seed,
                found=found[slots],
            )
        return row


def prepare_protocol(config: EvalConfig, embedder, detector=None) -> Protocol:
    """Pairs and identities of the config, HR landmarks (cached) and HR gallery embeddings (cached)."""
    if config.folds is not None and not 2 <= config.folds <= 10:
        raise ConfigError(f"folds={config.folds}: use 2 to 10 (each fold's threshold is chosen on the others)")
    root = check_lfw_dir(config.data)
    pairs = read_pairs(root)
    keep = np.ones(len(pairs.same), dtype=bool) if config.folds is None else pairs.fold < config.folds
    first, second, same, fold = pairs.first[keep], pairs.second[keep], pairs.same[keep], pairs.fold[keep]

    people = identification_images(root) if config.identification else {}
    if config.max_identities is not None:
        people = dict(list(people.items())[: config.max_identities])
    ident_images = [name for files in people.values() for name in files]
    ident_labels = np.array([i for i, files in enumerate(people.values()) for _ in files])

    # One index over every image either protocol touches.
    images = sorted(set(np.array(pairs.images)[np.concatenate([first, second])]) | set(ident_images))
    position = {name: i for i, name in enumerate(images)}
    pair_first = np.array([position[pairs.images[i]] for i in first])
    pair_second = np.array([position[pairs.images[i]] for i in second])
    ident_index = np.array([position[name] for name in ident_images], dtype=int)
    queries = np.unique(np.concatenate([pair_second, ident_index]))  # images used as LR queries
    query_slot = np.full(len(images), -1)
    query_slot[queries] = np.arange(len(queries))

    found = detect_landmarks(root, images, detector)  # only these images: a quick run detects only its folds'
    log.info("central face found by the detector in %d of %d images", found.detected.sum(), len(images))
    gallery = _cached_embeddings(
        embedder,
        lambda: aligned_crops(root, images, found.landmarks, (RECOGNIZER_SIDE,), "align HR gallery")[RECOGNIZER_SIDE],
        found.landmarks,
        "embed HR gallery",
    )
    return Protocol(
        root,
        images,
        found,
        gallery,
        pair_first,
        pair_second,
        same,
        fold,
        ident_index,
        ident_labels,
        queries,
        query_slot,
    )


def protocol_meta(config: EvalConfig, protocol: Protocol, embedder, started: float) -> dict:
    return {
        "recognizer": embedder.name,
        "recognizer_fingerprint": embedder.fingerprint,
        "pairs": int(len(protocol.same)),
        "folds": int(len(np.unique(protocol.fold))),
        "identification_identities": len(np.unique(protocol.ident_labels)),
        "identification_images": len(protocol.ident_index),
        "images": len(protocol.images),
        "faces_detected": int(protocol.landmarks.detected.sum()),
        "hr_side": HR_SIDE,
        "recognizer_side": RECOGNIZER_SIDE,
        "template": CANONICAL_TEMPLATE.tolist(),
        "flip": config.flip,
        "seconds": round(time.time() - started, 1),
    }


def embed_queries(embedder, crops: np.ndarray, desc: str, flip: bool = False) -> np.ndarray:
    """Embeddings of query crops; with flip, the mean of the crop's and its mirror image's (renormalised)."""
    embeddings = embed_all(embedder, crops, desc)
    if flip:
        embeddings += embed_all(embedder, np.ascontiguousarray(crops[:, :, ::-1]), desc + " (mirrored)")
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings


def evaluate_lfw(config: EvalConfig, hallucinator, embedder, detector=None, lr_embedder=None) -> EvalResult:
    """The aligned-crop protocol: queries aligned on their HR image, then degraded (module docstring).
    `lr_embedder`: a recogniser for the restored LR queries only (the adapted one); HR faces use `embedder`."""
    lr_embedder = lr_embedder or embedder
    started = time.time()
    if config.gate_px is not None and config.gate_px < 0:
        raise ConfigError(f"gate_px={config.gate_px}: use 0 or more (None: hallucinate every side)")
    protocol = prepare_protocol(config, embedder, detector)
    hr_queries = aligned_crops(
        protocol.root,
        [protocol.images[i] for i in protocol.queries],
        protocol.landmarks.landmarks[protocol.queries],
        (HR_SIDE,),
        "align queries",
    )[HR_SIDE]
    hr_query_embeddings = embed_queries(embedder, hr_queries, "embed HR queries", config.flip)

    rows = [protocol.row(config, "HR", None, hr_query_embeddings, hr_query_embeddings)]
    for side in tqdm(config.sizes, desc=f"LR sides ({hallucinator.name})"):
        lr = degrade(hr_queries, side, config.degradation, seed=config.seed + side)
        gated = config.gate_px is None or side < config.gate_px
        restorer, side_embedder = (hallucinator, lr_embedder) if gated else (BicubicHallucinator(), embedder)
        restored = restore_all(restorer, lr, f"{restorer.name} {side}px")
        row = protocol.row(
            config,
            f"LR {side}px" if gated else f"LR {side}px, above the gate: bicubic",
            side,
            embed_queries(side_embedder, restored, f"embed {side}px", config.flip),
            hr_query_embeddings,
        )
        row["hallucinated"] = float(gated)  # the share of queries hallucinated, as in the pipeline protocol
        subset = np.linspace(0, len(restored) - 1, min(config.psnr_limit, len(restored))).astype(int)
        row["psnr"], row["ssim"] = metrics.psnr_ssim(restored[subset], hr_queries[subset])
        rows.append(row)
    meta = {
        "protocol": "aligned",
        "hallucinator": hallucinator.name,
        "lr_recognizer": lr_embedder.name,
        "gate_px": config.gate_px,
        "degradation": config.degradation,
        **protocol_meta(config, protocol, embedder, started),
    }
    return EvalResult(rows, meta)


def _cached_embeddings(embedder, make_chips, landmarks: np.ndarray, desc: str) -> np.ndarray:
    """Embeddings of the HR chips, cached by recogniser, alignment and landmarks (the chips are made only on a miss)."""
    key = hashlib.sha256(
        f"{embedder.fingerprint}/align{ALIGN_VERSION}".encode() + landmarks.tobytes() + CANONICAL_TEMPLATE.tobytes()
    )
    path = cache_dir() / f"lfw_hr_embeddings_{key.hexdigest()[:16]}.npy"
    if path.is_file():
        stored = np.load(path, allow_pickle=False)
        if stored.shape == (len(landmarks), embedder.dim):
            return stored
    embeddings = embed_all(embedder, make_chips(), desc)
    with atomic_path(path) as tmp:
        np.save(tmp, embeddings)
    return embeddings
