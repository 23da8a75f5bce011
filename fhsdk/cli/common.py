"""What several commands share: the Pipeline's options, the gallery key, counting words."""

from __future__ import annotations

import argparse
import os

from fhsdk.errors import InvalidInputError
from fhsdk.pipeline import DEFAULT_THRESHOLD, Pipeline


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse reports anything else as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument(
        "--hallucinator", default="default", help="'default', 'lai', 'surveillance', 'bicubic' or a .pt file"
    )
    parser.add_argument(
        "--lr-recognizer",
        default=None,
        help="the recogniser's weights for hallucinated faces: 'adapted', 'original', a .pt state dict or "
        "several joined by '+' ('original+adapted': the mean of their embeddings) "
        "(default: the Pipeline's); galleries always use the original",
    )
    parser.add_argument("--gate-px", type=float, default=24.0, help="hallucinate faces whose region is smaller (px)")
    parser.add_argument("--threshold", type=float, default=None, help="cosine similarity needed to name a face")
    parser.add_argument(
        "--detector",
        default=None,
        help="face detector by name, 'mtcnn' or 'retinaface' (fhsdk.detect.list_detectors(); default: the Pipeline's)",
    )
    parser.add_argument(
        "--min-face",
        type=float,
        default=20.0,
        help="smallest face the detector looks for (px; >= 12 for MTCNN; RetinaFace adds a pass over the "
        "frame enlarged 48/min-face times below 48, up to 4x)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for every compute pool (default: fhsdk.threads.DEFAULT_THREADS, which holds "
        "up on a busy host; about cores / cameras on a dedicated one)",
    )


def add_gallery_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gallery-key-env",
        metavar="NAME",
        help="environment variable holding the gallery's encryption key (e.g. FHSDK_GALLERY_KEY; "
        "make one with: python -c 'import fhsdk; print(fhsdk.Gallery.generate_key())')",
    )


def gallery_key(args) -> str | None:
    """The key named by --gallery-key-env; read from the environment so it stays out of shell history."""
    if not args.gallery_key_env:
        return None
    key = os.environ.get(args.gallery_key_env, "").strip()
    if not key:
        raise InvalidInputError(
            f"--gallery-key-env names {args.gallery_key_env}, but that environment variable is "
            f"not set or empty: export it with the gallery's key"
        )
    return key


def make_pipeline(args, gallery=None):
    return Pipeline(
        device=args.device,
        hallucinator=args.hallucinator,
        gate_px=args.gate_px,
        threshold=args.threshold if args.threshold is not None else DEFAULT_THRESHOLD,
        min_face_size=args.min_face,
        gallery=gallery,
        gallery_key=gallery_key(args) if gallery else None,
        threads=args.threads,
        track=not getattr(args, "no_tracking", False),
        fuse=not getattr(args, "no_fusion", False),
        **({"detector": args.detector} if args.detector else {}),
        **({"lr_recognizer": args.lr_recognizer} if args.lr_recognizer else {}),
    )


def count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
