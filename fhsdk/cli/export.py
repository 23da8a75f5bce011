"""`fhsdk export`: a packaged model by name, or an architecture preset with weights, to ONNX with a parity check."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import fhsdk.detect  # noqa: F401  (registers the detectors' deployment presets)
import fhsdk.models  # noqa: F401  (registers the recogniser's and generators')
from fhsdk.errors import InvalidInputError
from fhsdk.hallucinate import PACKAGED
from fhsdk.models.checkpoints import build_preset_model, checkpoint_arch
from fhsdk.runtime.export import DEFAULT_OPSET, export_preset
from fhsdk.runtime.presets import get_preset, list_presets

HELP = "export a model to ONNX and check it against PyTorch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_export_arguments(parser, packaged={name: path for name, path in PACKAGED.items() if path.is_file()})


def add_export_arguments(parser: argparse.ArgumentParser, packaged: Mapping[str, Path] | None = None) -> None:
    """`packaged`: model files exportable by name (the CLI passes fhsdk's packaged hallucinators)."""
    parser.set_defaults(packaged=dict(packaged or {}))
    parser.add_argument(
        "model",
        choices=sorted(packaged or {}) + list_presets(),
        help="a packaged model by name, or an architecture preset (with --weights)",
    )
    parser.add_argument("-o", "--output", required=True, help="path of the .onnx file to write")
    parser.add_argument(
        "--weights",
        help="weights to load before export: a state_dict file (torch.save) or a "
        "checkpoint naming its architecture (train.export_weights)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="export an architecture preset untrained (checks the export path only)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (>= 17)")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    parser.add_argument("--json", dest="json_path", help="also write the export report as JSON here")


def run(args: argparse.Namespace) -> int:
    """`fhsdk export`: returns the exit code (0 when exported and parity passed)."""
    packaged = getattr(args, "packaged", {})
    name, weights = args.model, args.weights
    if name in packaged:
        if weights:
            raise InvalidInputError(
                f"'{name}' is a packaged model with its own weights: drop --weights, or "
                "export its architecture preset with your weights"
            )
        weights = packaged[name]
        name = checkpoint_arch(weights)
    random_weights = not weights and not get_preset(name).pretrained
    if random_weights and not args.random_weights:
        raise InvalidInputError(
            f"'{name}' is an architecture without trained weights: pass --weights FILE, export a packaged model "
            f"by name ({', '.join(sorted(packaged)) or 'none here'}), or add --random-weights to check the export only"
        )
    model = build_preset_model(name, weights)
    report = export_preset(name, args.output, model=model, opset=args.opset, check=not args.no_check)
    report = dataclasses.replace(report, random_weights=random_weights)
    print(report.summary())
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump(
                {
                    "path": str(report.path),
                    "model_name": report.model_name,
                    "opset": report.opset,
                    "weights_sha256": report.weights_sha256,
                    "onnx_sha256": report.onnx_sha256,
                    "passed": report.passed,
                    "random_weights": report.random_weights,
                    "parity": [c.__dict__ for c in report.parity],
                },
                handle,
                indent=2,
            )
    return 0 if report.passed else 1
