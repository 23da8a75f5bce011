"""`fhsdk demo`: the built-in demo, no data needed."""

from __future__ import annotations

import argparse
from pathlib import Path

from fhsdk.demo import DEMO_CAMERA
from fhsdk.demo import run_demo as demo

HELP = "run the built-in demo (no data needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument(
        "--hallucinator", default="default", help="'default', 'lai', 'surveillance', 'bicubic' or a .pt file"
    )
    parser.add_argument("--face-px", type=float, default=16.0, help="side of the face region in the scene, px")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument(
        "--camera",
        type=parse_camera,
        default=None,
        metavar="BLUR,NOISE,JPEG",
        help="camera blur sigma (frame px), sensor noise std (0-255) and JPEG quality "
        f"(default {','.join(f'{v:g}' for v in DEMO_CAMERA)})",
    )
    parser.add_argument("--device", default="cpu")


def parse_camera(text: str) -> tuple[float, float, int]:
    """BLUR,NOISE,JPEG for argparse (also tools/demo_similarity.py): checked, JPEG quality as an int."""
    try:
        blur, noise, quality = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--camera takes BLUR,NOISE,JPEG, e.g. 0.6,2,70; got {text!r}") from None
    if blur < 0 or noise < 0 or not 1 <= quality <= 100:
        raise argparse.ArgumentTypeError("--camera: blur and noise must be >= 0 and JPEG quality in 1..100")
    return blur, noise, int(quality)


def run(args: argparse.Namespace) -> int:
    summary = demo(args.out, args.hallucinator, args.face_px, args.frames, args.device, camera=args.camera)
    for label in ("hallucination_on", "hallucination_off"):
        part = summary[label]
        print(
            f"{label:18s}: named in {part['frames_named']}/{part['frames_with_face']} frames with a face "
            f"(hallucinator {part['hallucinator']}) -> {part['video']}, {part['events']}"
        )
    print(f"summary: {args.out / 'summary.json'}")
    return 0
