"""Per-frame and fused similarity of the demo's face to its enrolled photo, per path and face size.

Explains what `fhsdk demo` shows: for each face size it renders the demo scene, embeds every detected
face with and without hallucination, and prints the mean per-frame cosine to the enrolled photo
(tracking off) and the frames named with tracking and fusion on (the demo's setting).

    python tools/demo_similarity.py --face-px 14 16 20 --camera 0.6,2,70 --camera 0,1,90 --hallucinator default
    python tools/demo_similarity.py --frames 40 --face-px 14 16 --lr-recognizer original --lr-recognizer adapted
"""

from __future__ import annotations

import argparse

import numpy as np

from fhsdk.cli.demo import parse_camera
from fhsdk.demo import DEMO_CAMERA, astronaut_bgr, render_scene
from fhsdk.embed import ORIGINAL, is_original
from fhsdk.pipeline import DEFAULT_THRESHOLD, Pipeline


def scene_scores(
    hallucinator: str,
    gate_px: float,
    scene: list[np.ndarray],
    face: np.ndarray,
    threshold: float,
    lr_recognizer: str | None = None,
) -> tuple[float, int, int]:
    """(mean per-frame cosine, frames with a face, frames named after fusion)."""
    options = dict(hallucinator=hallucinator, gate_px=gate_px, threshold=threshold, lr_recognizer=lr_recognizer)
    per_frame = Pipeline(track=False, **options)
    per_frame.enroll("astronaut", [face])
    cosines = [f.similarity for r in per_frame.stream(iter(scene)) for f in r.faces]
    fused = Pipeline(gallery=per_frame.gallery, **options)
    results = list(fused.stream(iter(scene)))
    named = sum(any(f.identity == "astronaut" for f in r.faces) for r in results)
    return float(np.mean(cosines)) if cosines else float("nan"), sum(bool(r.faces) for r in results), named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--face-px", type=float, nargs="+", default=[12, 14, 16, 20])
    parser.add_argument(
        "--hallucinator", action="append", help="repeatable; 'default', 'lai', 'surveillance' or a .pt file"
    )
    parser.add_argument(
        "--lr-recognizer",
        action="append",
        help="repeatable: the recogniser for hallucinated faces ('original', 'adapted'; default: original)",
    )
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument(
        "--camera",
        action="append",
        type=parse_camera,
        metavar="BLUR,NOISE,JPEG",
        help="repeatable: blur sigma (frame px), noise std (0-255), JPEG quality; default: the demo's",
    )
    args = parser.parse_args()
    face = astronaut_bgr()
    landmarks = Pipeline(hallucinator="bicubic").detect(face)[0].landmarks
    cameras = args.camera or [DEMO_CAMERA]
    print("camera (blur, noise, JPEG) | face_px | path | mean per-frame cosine | frames with face | named (fused)")
    for blur, noise, quality in cameras:
        for face_px in args.face_px:
            scene = render_scene(
                face, landmarks, face_px, args.frames, blur_sigma=blur, noise_std=noise, jpeg_quality=quality
            )
            paths = [("direct", "bicubic", 0, None)] + [
                (h if is_original(lr) else f"{h} + {lr}", h, 24, lr)
                for h in args.hallucinator or ["default"]
                for lr in args.lr_recognizer or [ORIGINAL]
            ]
            for label, hallucinator, gate, lr in paths:
                cosine, with_face, named = scene_scores(hallucinator, gate, scene, face, args.threshold, lr)
                print(
                    f"{blur:g}, {noise:g}, {quality:g} | {face_px:g} | {label} | {cosine:.4f} | {with_face} | {named}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
