"""TEST-ONLY helpers. Nothing here is used by real training runs.

`make_center_crop_cache` writes a small face cache from real CelebA photos WITHOUT detection or
alignment: it takes a centred square of each photo and resizes it with OpenCV. CelebA photos are
centred on the person, so these are real faces, but not the canonical aligned region; they exist so
the Dataset and the procedures can be tested quickly and independently of the detector.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from train.data import read_identities, write_cache


def make_center_crop_cache(
    celeba_dir: str | Path, path: str | Path, identities: int = 4, per_identity: int = 4, side: int = 128
) -> Path:
    rows = read_identities(celeba_dir)
    chosen: dict[int, list[str]] = {}
    for name, identity in rows:
        members = chosen.setdefault(identity, []) if len(chosen) < identities or identity in chosen else None
        if members is not None and len(members) < per_identity:
            members.append(name)
    images, labels, files = [], [], []
    for identity, names in chosen.items():
        for name in names:
            frame = cv2.imread(str(Path(celeba_dir) / name), cv2.IMREAD_COLOR)
            height, width = frame.shape[:2]
            half = int(min(height, width) * 0.25)  # a face-sized square, a little above the centre
            cy, cx = max(half, int(height * 0.42)), width // 2
            crop = frame[cy - half : cy + half, cx - half : cx + half]
            images.append(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)[:, :, ::-1])
            labels.append(identity)
            files.append(name)
    write_cache(path, np.stack(images), np.array(labels), files, [], source="TEST-ONLY centre crops, not aligned")
    return Path(path)


# Config overrides that shrink every method to seconds per run on a CPU (for tests only).
TINY_COMMON = [
    "data.batch_size=4",
    "data.max_identities=null",
    "data.split=image",
    "data.val_fraction=0.0",
    "recognizer={name: small_cnn, input_size: 48, width: 8, embedding_dim: 32}",
    "discriminator.num_features=8",
    "discriminator.num_stages=3",
]
TINY = {
    "lai": ["generator.num_features=16", "generator.num_blocks=2", "degradation.factors=[4, 8, 16]"],
    "sicnn": ["generator.num_features=16", "generator.growth_rate=8", "generator.layers_per_block=2"],
    "cface": ["generator.num_features=16", "generator.num_blocks=2"],
    "fhgan": [
        "generator.num_features=16",
        "generator.num_blocks=2",
        "generator.layers_per_block=3",
        "generator.growth_rate=8",
        "generator.bottleneck_features=16",
    ],
    "distill": ["generator.num_features=16", "generator.num_blocks=2", "train.init_generator=null"],
    "pipeline_finetune": ["generator.num_features=16", "generator.num_blocks=2", "train.init_generator=null"],
    "ipfsrgan": [
        "generator.num_features=16",
        "generator.num_blocks=1",
        "generator.growth_rate=8",
        "recognizer.feature_layers=[stages.2, stages.5]",
    ],
}


def tiny_config(method: str, cache: str | Path, steps: int = 6, extra: list[str] = ()) -> dict:
    """The method's cpu_small preset shrunk further, reading the given (test) cache."""
    from train.config import load_config

    overrides = [*TINY_COMMON, *TINY[method], f"data.cache={cache}", f"train.steps={steps}", *extra]
    if method in ("lai", "sicnn", "distill", "pipeline_finetune"):
        overrides = [o for o in overrides if not o.startswith("discriminator.")]
    return load_config(method, "cpu_small", overrides)
