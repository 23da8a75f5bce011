"""Judge hallucinators end to end on held-out CelebA people (the training split's validation people, not LFW).

    python -m train.validate_pipeline --config pipeline_finetune --sizes 12 16 \
        --hallucinator none --hallucinator default --hallucinator runs/pipeline-ft/generator.pt
    python -m train.validate_pipeline --config distill --max-people 150 --hallucinator none \
        --hallucinator default --lr-recognizer original --lr-recognizer runs/distill/recognizer_finetuned.pt

The end-to-end protocol of `fhsdk.eval.end_to_end`, on the people a run never trained on: each
validation face's original file (padded as the face cache pads it) is shrunk as a whole so its
canonical region is s px, centred in a grey frame, and run through `Pipeline.process_batch` (detect on
the tiny frame, align from its own landmarks, gate, hallucinate, embed). The query's face is the
detection nearest the true face; an image with none is a detection miss, counted as a failure. Galleries
are one HR face per person (the face cache's aligned crop, embedded by the recogniser); every other face
of the person is a query. Rank-1: nearest gallery person (misses count as wrong); id cosine: the query's
cosine with its own HR crop's embedding, over found faces; TAR at FAR 1% and the FAR at the pipeline's
threshold: every found query against every gallery person. 'none' is gate_px=0 (no hallucination). Only
a hallucinator that beats the packaged default here may replace it, and only an adapted recogniser
(`--lr-recognizer`) that beats the original here may be packaged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fhsdk.align import region_side_px
from fhsdk.embed import ORIGINAL, is_original
from fhsdk.errors import ConfigError
from fhsdk.eval.end_to_end import BATCH_FRAMES, make_pipeline, query_frame, query_landmarks
from fhsdk.eval.metrics import verification_rate
from train.config import load_config
from train.data import _as_dirs, config_cache_path, pad_for_detection, pick_face, split_cache


def validation_queries(data_cfg: dict, max_people: int | None = None, seed: int = 0, source: str | None = None) -> dict:
    """The validation people's files: padded originals, their HR landmarks, HR crops, labels, gallery rows.
    `source`: only faces from that data folder (e.g. celeba_extra: people a celeba_subset-only run never saw)."""
    from fhsdk.detect.mtcnn import MTCNN

    dirs = {d.name: d for d in _as_dirs(data_cfg["celeba_dir"] or "celeba_subset")}
    cache, _, val = split_cache(data_cfg)
    if source is not None:
        val = val[cache["sources"][val] == source]
    people, counts = np.unique(cache["labels"][val], return_counts=True)
    people = people[counts >= 2]
    if max_people is not None:
        people = np.random.default_rng(seed).permutation(people)[:max_people]
    val = val[np.isin(cache["labels"][val], people)]
    if len(val) == 0:
        raise ConfigError(f"{config_cache_path(data_cfg)} has no validation people with two faces")
    detector = MTCNN(min_face_size=20)
    images, landmarks, keep = [], [], []
    for row in tqdm(val, desc="HR landmarks of validation faces"):
        folder = dirs.get(str(cache["sources"][row]))
        if folder is None:
            continue
        frame = cv2.imread(str(folder / str(cache["files"][row])), cv2.IMREAD_COLOR)
        if frame is None:
            continue
        frame = pad_for_detection(frame, str(cache["framings"][row]))
        found = detector.detect([frame])[0]
        if len(found) == 0:
            continue
        images.append(frame)
        landmarks.append(found.landmarks[pick_face(found.boxes, frame.shape[:2])])  # the face the cache kept
        keep.append(row)
    keep = np.array(keep)
    labels = np.unique(cache["labels"][keep], return_inverse=True)[1]
    first = np.array([np.flatnonzero(labels == person)[0] for person in range(labels.max() + 1)])
    return {
        "images": images,
        "landmarks": np.array(landmarks),
        "labels": labels,
        "gallery_rows": first,
        "hr_crops": np.ascontiguousarray(cache["images"][keep][..., ::-1]),
        "cache": str(config_cache_path(data_cfg)),
    }


def evaluate(data: dict, pipeline, sides) -> list[dict]:
    hr = pipeline.embed(data["hr_crops"])  # the canonical HR crops, by the recogniser (as a gallery is)
    gallery, labels = hr[data["gallery_rows"]], data["labels"]
    queries = np.setdiff1d(np.arange(len(labels)), data["gallery_rows"])
    rows = []
    for side in sides:
        embeddings = np.zeros((len(queries), hr.shape[1]), np.float32)
        found = np.zeros(len(queries), bool)
        for start in range(0, len(queries), BATCH_FRAMES):
            chunk = queries[start : start + BATCH_FRAMES]
            frames = [query_frame(data["images"][q], data["landmarks"][q : q + 1], side) for q in chunk]
            for offset, (q, _frame, result) in enumerate(
                zip(chunk, frames, pipeline.process_batch(frames, keep_restored=False))
            ):
                if not result.faces:
                    continue
                expected = query_landmarks(data["images"][q].shape, data["landmarks"][q], side).mean(axis=0)
                centres = np.array([f.landmarks for f in result.faces]).reshape(-1, 5, 2).mean(axis=1)
                distance = np.linalg.norm(centres - expected, axis=1)
                if distance.min() <= 0.5 * side:
                    embeddings[start + offset] = result.faces[int(np.argmin(distance))].embedding
                    found[start + offset] = True
        similarity = embeddings @ gallery.T
        correct = found & (np.argmax(similarity, axis=1) == labels[queries])
        cosine = np.sum(embeddings * hr[queries], axis=1)
        # Verification of every found query against every gallery person: how far apart the found faces'
        # own person and the strangers are (TAR at FAR 1%), and the share of strangers the threshold names.
        scores = similarity[found].ravel()
        same = (labels[queries][found][:, None] == np.arange(len(gallery))[None, :]).ravel()
        rows.append(
            {
                "side": side,
                "queries": int(len(queries)),
                "people": int(len(gallery)),
                "found": float(found.mean()),
                "rank1": float(correct.mean()),
                "rank1_found": float(correct[found].mean()) if found.any() else 0.0,
                "id_cosine_found": float(cosine[found].mean()) if found.any() else 0.0,
                "tar_at_far_1%_found": verification_rate(scores, same, 1e-2) if found.any() else 0.0,
                "far_at_threshold_found": float((scores[~same] >= pipeline.threshold).mean()) if found.any() else 0.0,
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="pipeline_finetune", help="the training config whose split is used")
    parser.add_argument("--preset", default=None)
    parser.add_argument(
        "--hallucinator",
        action="append",
        required=True,
        help="'none' (gate_px=0), 'bicubic', a packaged name or a .pt file; repeat to compare",
    )
    parser.add_argument(
        "--lr-recognizer",
        action="append",
        default=None,
        help="the recogniser's weights for hallucinated faces (Pipeline's lr_recognizer): 'original', "
        "'adapted' or a .pt state dict; repeat to compare each with every hallucinator (default: original)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16])
    parser.add_argument(
        "--gate-px", type=float, default=None, help="hallucinate faces smaller than this (default: Pipeline's)"
    )
    parser.add_argument("--max-people", type=int, default=None)
    parser.add_argument("--source", default=None, help="only validation faces from this data folder, e.g. celeba_extra")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)

    cfg = load_config(args.config, preset=args.preset)
    data = validation_queries(cfg["data"], args.max_people, source=args.source)
    print(
        f"{len(data['labels'])} faces of {len(data['gallery_rows'])} validation people ({data['cache']}); "
        f"median HR region {np.median(region_side_px(data['landmarks'])):.0f} px"
    )
    report = {}
    print(
        "| hallucinator | side (px) | queries | found (%) | rank-1, misses = errors (%) | rank-1, found (%) | id cosine, found "
        "| TAR at FAR 1%, found (%) | FAR at the threshold, found (%) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    arms = [
        (spec, lr)
        for spec in args.hallucinator
        for lr in ([ORIGINAL] if spec == "none" else args.lr_recognizer or [ORIGINAL])
    ]
    for spec, lr in arms:
        none = spec == "none"
        label = spec if is_original(lr) else f"{spec} + {lr}"
        pipeline = make_pipeline(
            "bicubic" if none else spec,
            gate_px=0.0 if none else args.gate_px,
            backend=args.backend,
            lr_recognizer=lr,
        )
        report[label] = evaluate(data, pipeline, args.sizes)
        for row in report[label]:
            print(
                f"| {label} | {row['side']} | {row['queries']} | {100 * row['found']:.1f} | {100 * row['rank1']:.2f} | "
                f"{100 * row['rank1_found']:.2f} | {row['id_cosine_found']:.4f} | {100 * row['tar_at_far_1%_found']:.2f} | "
                f"{100 * row['far_at_threshold_found']:.2f} |",
                flush=True,
            )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
