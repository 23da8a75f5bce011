"""`fhsdk demo`: a self-contained run on built-in input, no data folder needed.

The face is scikit-image's `astronaut` photo (public domain, NASA). It is enrolled at full
resolution, then rendered as a tiny face (its canonical region `face_px` wide) drifting through a
low-resolution, noisy, JPEG-compressed scene, as a distant surveillance camera would see it
(`camera` adds optical blur too). The pipeline runs twice over the same frames, with the resolution
gate on (tiny faces are hallucinated) and off (they go straight to the recogniser), and the demo
reports in how many frames the person is named by each.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import skimage.data
from tqdm import tqdm

from fhsdk.align import crop_transforms
from fhsdk.outputs import AnnotatedVideoWriter, EventLog
from fhsdk.pipeline import Pipeline

FRAME_SIZE = (480, 270)  # width, height
# A distant camera: the scene is area-averaged down to few pixels (as `benchmarks/video_identification.py`
# downscales real footage), then mild sensor noise and JPEG. Blur sigma (frame px), noise std (0-255), quality.
DEMO_CAMERA = (0.0, 1.0, 90)


def astronaut_bgr() -> np.ndarray:
    return skimage.data.astronaut()[:, :, ::-1].copy()


def render_scene(
    face_image: np.ndarray,
    landmarks: np.ndarray,
    face_px: float,
    frames: int,
    seed: int = 0,
    blur_sigma: float = DEMO_CAMERA[0],
    noise_std: float = DEMO_CAMERA[1],
    jpeg_quality: int = DEMO_CAMERA[2],
) -> list[np.ndarray]:
    """Frames with the face (scaled so its canonical region is face_px wide) moving across a street-like scene.

    The camera: Gaussian blur (sigma in frame pixels), sensor noise (std in 0-255 units), JPEG quality.
    """
    rng = np.random.default_rng(seed)
    width, height = FRAME_SIZE
    background = cv2.resize(skimage.data.rocket()[:, :, ::-1], (width, height), interpolation=cv2.INTER_AREA)
    region_side = 1.0 / np.hypot(*crop_transforms(landmarks, 1)[0, :, 0])
    scale = face_px / region_side
    small = cv2.resize(face_image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    centre = landmarks.mean(axis=0) * scale
    radius = 1.1 * face_px
    mask = np.zeros(small.shape[:2], np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(radius * 0.8), int(radius)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), face_px / 8)[:, :, None]
    out = []
    for t in range(frames):
        x = int(40 + (width - 80) * t / max(frames - 1, 1) - centre[0])
        y = int(height * 0.45 + 6 * np.sin(t / 4) - centre[1])
        frame = background.astype(np.float32).copy()
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + small.shape[1], width), min(y + small.shape[0], height)
        patch, alpha = small[y0 - y : y1 - y, x0 - x : x1 - x], mask[y0 - y : y1 - y, x0 - x : x1 - x]
        frame[y0:y1, x0:x1] = alpha * patch + (1 - alpha) * frame[y0:y1, x0:x1]
        if blur_sigma > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), blur_sigma)
        frame = np.clip(frame + rng.normal(0, noise_std, frame.shape), 0, 255).astype(np.uint8)
        _, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        out.append(cv2.imdecode(encoded, cv2.IMREAD_COLOR))
    return out


def run_demo(
    out_dir: str | Path = "out/demo",
    hallucinator: str = "default",
    face_px: float = 16.0,
    frames: int = 40,
    device: str = "cpu",
    camera: tuple[float, float, int] | None = None,
) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    face = astronaut_bgr()
    blur, noise, quality = camera or DEMO_CAMERA
    summary = {
        "face_px": face_px,
        "frames": frames,
        "camera": {"blur_sigma": blur, "noise_std": noise, "jpeg_quality": quality},
    }
    with_sr = Pipeline(device=device, hallucinator=hallucinator)
    without_sr = Pipeline(device=device, hallucinator="bicubic", gate_px=0, gallery=with_sr.gallery)
    with_sr.enroll("astronaut", [face])
    landmarks = with_sr.detect(face)[0].landmarks
    scene = render_scene(face, landmarks, face_px, frames, blur_sigma=blur, noise_std=noise, jpeg_quality=int(quality))
    cv2.imwrite(str(out_dir / "enrolled.jpg"), face)

    for label, pipe in (("hallucination_on", with_sr), ("hallucination_off", without_sr)):
        named = detected = 0
        video_path, events_path = out_dir / f"demo_{label}.mp4", out_dir / f"events_{label}.jsonl"
        with AnnotatedVideoWriter(video_path, 10, FRAME_SIZE, pipe.threshold) as video, EventLog(events_path) as events:
            for result, frame in zip(tqdm(pipe.stream(iter(scene), keep_images=True), total=frames, desc=label), scene):
                video.write(frame, result)
                for event in result.events:
                    events.write(event)
                detected += bool(result.faces)
                named += any(f.identity == "astronaut" for f in result.faces)
        summary[label] = {
            "frames_with_face": detected,
            "frames_named": named,
            "video": str(video_path),
            "events": str(events_path),
            "hallucinator": pipe.hallucinator.name,
        }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
