"""Judge an adapted recogniser on held-out CelebA people (the training split's validation people, not LFW).

    python -m train.validate_recognizer RUN_DIR [--sizes 8 12 16] [--max-people 150]

Galleries are what deployment keeps: one HR face per person, embedded by the original recogniser. Queries
are the person's other faces, shrunk bicubically to side s (as `fhsdk.degrade`), restored by the
hallucinator the run adapted to, and embedded once by the original recogniser (frozen), once by the
run's recogniser (`RUN/recognizer_finetuned.pt`) and by their ensemble (the mean direction of the two
embeddings, Pipeline's `lr_recognizer="original+adapted"`); HR queries too, to check the adapted
recogniser keeps HR faces where they were. Rank-1 as in `fhsdk.eval.metrics.rank1_identification` (a
random gallery face per person and run, 10 runs); id cosine: mean cosine of the query's embedding with its own HR face's
original embedding. Verification over every query/gallery pair of different faces: TAR at FAR 1%, and the
FAR that Pipeline's default threshold gives each kind of query (an adapted recogniser moves absolute cosines).
Only weights that beat the frozen recogniser here may be packaged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fhsdk.degrade import degrade
from fhsdk.embed import Embedder, mean_direction
from fhsdk.errors import ConfigError
from fhsdk.eval.harness import embed_all, restore_all
from fhsdk.eval.metrics import rank1_identification, verification_rate
from fhsdk.hallucinate import create_hallucinator
from fhsdk.pipeline import DEFAULT_THRESHOLD
from train.config import load_config
from train.data import config_cache_path, split_cache


def validation_faces(data_cfg: dict, max_people: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(BGR uint8 HR faces, person labels) of the validation people with at least two faces."""
    cache, _, val = split_cache(data_cfg)
    labels = cache["labels"][val]
    people, counts = np.unique(labels, return_counts=True)
    people = people[counts >= 2]
    if max_people is not None:
        people = np.random.default_rng(seed).permutation(people)[:max_people]
    keep = val[np.isin(labels, people)]
    if len(keep) == 0:
        raise ConfigError(
            f"{config_cache_path(data_cfg)} has no validation people with two faces: check data.split and val_fraction"
        )
    return np.ascontiguousarray(cache["images"][keep][..., ::-1]), np.unique(
        cache["labels"][keep], return_inverse=True
    )[1]


def validate(
    run_dir: str | Path,
    sizes=(8, 12, 16),
    max_people: int | None = 150,
    hallucinator: str | None = None,
    weights: str | Path | None = None,
) -> list[dict]:
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    weights = Path(weights or run_dir / "recognizer_finetuned.pt")
    hallucinator = create_hallucinator(hallucinator or cfg["train"].get("init_generator") or "default")
    faces, labels = validation_faces(cfg["data"], max_people)
    original, adapted = Embedder(), Embedder(weights=weights)
    gallery = embed_all(original, faces, "embed HR (original)")
    rows = []

    # Verification pairs: every query against every other face's HR gallery embedding.
    pair = ~np.eye(len(labels), dtype=bool)
    same = (labels[:, None] == labels[None, :])[pair]

    def row(query: str, side, recognizer: str, embeddings: np.ndarray) -> dict:
        rank1, spread = rank1_identification(gallery, embeddings, labels, runs=10, seed=0)
        scores = (embeddings @ gallery.T)[pair]
        return {
            "query": query,
            "side": side,
            "recognizer": recognizer,
            "rank1": rank1,
            "rank1_std": spread,
            "identity_cosine": float(np.einsum("nd,nd->n", embeddings, gallery).mean()),
            "tar_at_far_1%": verification_rate(scores, same, 1e-2),
            # Where Pipeline's threshold puts this query kind: the share of strangers it would name (Gallery.match
            # names at similarity >= threshold).
            "far_at_default_threshold": float((scores[~same] >= DEFAULT_THRESHOLD).mean()),
        }

    def rows_for(query: str, side, by_original: np.ndarray, by_adapted: np.ndarray) -> list[dict]:
        # and their ensemble (Pipeline's lr_recognizer='original+adapted'): the mean direction of the two
        both = mean_direction(by_original, by_adapted)
        return [
            row(query, side, "original", by_original),
            row(query, side, "adapted", by_adapted),
            row(query, side, "original+adapted", both),
        ]

    rows += rows_for("HR", None, gallery, embed_all(adapted, faces, "embed HR (adapted)"))
    for side in sizes:
        restored = restore_all(hallucinator, degrade(faces, side, "bicubic", seed=side), f"hallucinate {side}px")
        by_original, by_adapted = embed_all(original, restored, "embed"), embed_all(adapted, restored, "embed")
        rows += rows_for(f"{hallucinator.name} {side}px", side, by_original, by_adapted)
    for r in rows:
        r.update(people=int(labels.max() + 1), faces=len(labels), weights=str(weights))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        f"| query | recogniser | rank-1 (%) | id cosine | TAR at FAR 1% (%) | FAR at {DEFAULT_THRESHOLD} (%) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['query']} | {r['recognizer']} | {100 * r['rank1']:.2f} ± {100 * r['rank1_std']:.2f} | "
        f"{r['identity_cosine']:.4f} | {100 * r['tar_at_far_1%']:.2f} | {100 * r['far_at_default_threshold']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.validate_recognizer", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16])
    parser.add_argument("--max-people", type=int, default=150, help="validation people to use (0: all)")
    parser.add_argument("--hallucinator", help="default: the run's train.init_generator")
    parser.add_argument("--weights", help="recogniser weights (default: RUN_DIR/recognizer_finetuned.pt)")
    args = parser.parse_args(argv)
    rows = validate(args.run_dir, tuple(args.sizes), args.max_people or None, args.hallucinator, args.weights)
    (Path(args.run_dir) / "validation.json").write_text(json.dumps(rows, indent=2))
    print(f"{rows[0]['people']} held-out people, {rows[0]['faces']} faces\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
