"""`fhsdk verify`: a backend's outputs against PyTorch FP32, on random inputs or on real aligned faces.

Real faces need the SDK's detector and aligner, which is why this lives here and not in the runtime.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fhsdk.align import align
from fhsdk.detect.mtcnn import MTCNN
from fhsdk.errors import InvalidInputError, WeightsError
from fhsdk.models.checkpoints import build_preset_model
from fhsdk.models.dlib_resnet import RGB_MEAN, RGB_SCALE
from fhsdk.runtime.export import read_metadata, state_dict_sha256
from fhsdk.runtime.factory import create_backend
from fhsdk.runtime.presets import get_preset
from fhsdk.runtime.verify import verify_backend

HELP = "check a backend against PyTorch FP32"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", help="ONNX file (or fhsdk .engine file for --backend tensorrt) to verify")
    parser.add_argument("--model", help="preset name of the PyTorch reference (default: read from the ONNX metadata)")
    parser.add_argument("--weights", help="state_dict file of the reference (the weights that were exported)")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "tensorrt"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16"),
        help="of the backend checked (default: FP16 on CUDA, FP32 on CPU); the reference is FP32",
    )
    parser.add_argument("--batch", type=int, default=8, help="batch size of the random test inputs")
    parser.add_argument("--inputs", help=".npy file with the reference network's first input (overrides random inputs)")
    parser.add_argument(
        "--faces",
        nargs="+",
        help="face images (or a folder of them): detected, aligned and fed as "
        "real inputs to the recogniser (150 px chips) or a generator (LR crops at its input side)",
    )
    parser.add_argument("--min-cosine", type=float, help="pass threshold (default 0.99999 FP32, 0.999 FP16)")
    parser.add_argument("--json", dest="json_path", help="also write the result as JSON here")


def face_inputs(paths: Sequence[str], model_name: str, preset) -> np.ndarray:
    """Real aligned faces as a network input: normalised 150 px chips for the recogniser, LR crops in
    [0, 1] RGB at the generator's input side otherwise. The runtime knows no faces; this is the one
    place verification borrows the SDK's detector and aligner to get realistic inputs."""
    files = []
    for path in map(Path, paths):
        files.extend(
            sorted(p for p in path.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
            if path.is_dir()
            else [path]
        )
    detector, crops = MTCNN(), []
    side = int(preset.io.example_shapes["image"][-1])  # the network's input side, from its preset
    for file in files:
        image = cv2.imread(str(file))
        if image is None:
            raise InvalidInputError(f"cannot read face image {file}")
        found = detector.detect(image)[0]
        if len(found):
            crops.append(align(image, found.landmarks[:1], side)[0])
    if not crops:
        raise InvalidInputError("no face found in the --faces images: pass photos with visible faces")
    rgb = np.stack(crops)[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    if model_name == "dlib_resnet_v1":
        return (rgb - np.array(RGB_MEAN, np.float32).reshape(1, 3, 1, 1)) * RGB_SCALE
    return rgb / 255.0


def run(args: argparse.Namespace) -> int:
    """`fhsdk verify`: returns the process exit code (0 PASS, 1 FAIL)."""
    onnx_path = args.model_file
    metadata = read_metadata(onnx_path) if onnx_path.endswith(".onnx") else {}
    name = args.model or metadata.get("fhsdk.model_name")
    if not name:
        raise InvalidInputError(f"'{onnx_path}' names no model in its metadata: pass --model NAME")
    preset = get_preset(name)
    model = build_preset_model(name, args.weights)
    exported_hash = metadata.get("fhsdk.weights_sha256")
    if exported_hash and exported_hash != state_dict_sha256(model):
        raise WeightsError(
            f"the reference {name} weights differ from those exported into '{onnx_path}' "
            f"(sha256 {exported_hash[:12]}): pass --weights with the exported state_dict"
        )
    reference = create_backend("torch", model, device=args.device, precision="fp32", io=preset.io)
    candidate = create_backend(args.backend, onnx_path, device=args.device, precision=args.precision)
    if args.faces:
        feeds = {preset.io.input_names[0]: face_inputs(args.faces, name, preset)}
    elif args.inputs:
        feeds = {preset.io.input_names[0]: np.load(args.inputs).astype(np.float32)}
    else:
        feeds = preset.io.example_inputs(batch=args.batch)
    result = verify_backend(candidate, reference, feeds, min_cosine=args.min_cosine)
    print(result.table())
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump(result.to_dict(), handle, indent=2)
    return 0 if result.passed else 1
