"""`fhsdk eval lfw`: low-resolution LFW verification and identification, aligned or end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from fhsdk.align import LR_SIDES
from fhsdk.embed import DEFAULT_RECOGNIZER, create_lr_recognizer, create_recognizer, is_original
from fhsdk.errors import InvalidInputError
from fhsdk.eval.end_to_end import evaluate_lfw_pipeline, make_pipeline
from fhsdk.eval.harness import EvalConfig, evaluate_lfw
from fhsdk.eval.report import markdown_table, plot_accuracy, write_outputs
from fhsdk.hallucinate import create_hallucinator

HELP = "evaluate recognition of low-resolution faces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", required=True)
    lfw = sub.add_parser("lfw", help="low-resolution LFW verification and rank-1 identification")
    lfw.add_argument("--data", type=Path, required=True, help="the LFW folder (pairs.txt, images/)")
    lfw.add_argument(
        "--protocol",
        choices=["aligned", "pipeline"],
        default="aligned",
        help="aligned: queries aligned on the HR image, then degraded (the papers' protocol); pipeline: "
        "whole query images shrunk so the face is s px, detected, aligned, gated, hallucinated and "
        "embedded by Pipeline itself, detection misses counted as failures",
    )
    lfw.add_argument(
        "--hallucinator",
        action="append",
        default=None,
        help="'bicubic', a packaged model ('default', 'lai', 'surveillance') or a .pt file; with "
        "--protocol pipeline also 'none' (gate_px=0: no face is hallucinated); "
        "repeat to compare several (default: bicubic)",
    )
    lfw.add_argument("--detector", default="mtcnn", help="--protocol pipeline: the Pipeline's detector")
    lfw.add_argument(
        "--gate-px",
        type=float,
        default=None,
        help="hallucinate faces whose region is smaller (--protocol pipeline: default Pipeline's); --protocol "
        "aligned: sides at or above it are upsampled bicubically and embedded by the original recogniser, as "
        "Pipeline treats faces that large (default: every side hallucinated)",
    )
    lfw.add_argument(
        "--flip",
        action="store_true",
        help="flip test-time augmentation: each query's embedding averages it and its mirror image",
    )
    lfw.add_argument("--sizes", type=int, nargs="+", default=None, help="LR sides in px (default 8 12 16 24 32)")
    lfw.add_argument("--degradation", choices=["bicubic", "surveillance"], default="bicubic")
    lfw.add_argument("--folds", type=int, default=None, help="only the first K folds (quick runs)")
    lfw.add_argument("--max-identities", type=int, default=None, help="limit the identification set")
    lfw.add_argument("--no-identification", action="store_true")
    lfw.add_argument("--device", default="cpu")
    lfw.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnxruntime", "tensorrt", "auto"],
        help="runtime for the recogniser and hallucinators (results agree to float tolerance)",
    )
    lfw.add_argument(
        "--recognizer-weights",
        type=Path,
        default=None,
        help="a recogniser fine-tuned during training (`python -m train.export_weights RUN --recognizer`) "
        "instead of dlib's shipped weights; the tables name it",
    )
    lfw.add_argument(
        "--lr-recognizer",
        default=None,
        help="the recogniser's weights for the hallucinated LR queries only: 'adapted' (packaged), 'original', "
        "a .pt state dict, or several joined by '+' ('original+adapted': the mean of their embeddings); "
        "default: original for --protocol aligned, the Pipeline's default for --protocol pipeline; HR faces "
        "and the gallery keep dlib's (Pipeline's lr_recognizer)",
    )
    lfw.add_argument("--out", type=Path, default=Path("out/eval"))


def run(args: argparse.Namespace) -> int:
    if args.protocol == "aligned" and (args.detector != "mtcnn" or "none" in (args.hallucinator or [])):
        raise InvalidInputError("--detector and the 'none' hallucinator belong to --protocol pipeline")
    if args.protocol == "pipeline" and args.recognizer_weights is not None:
        raise InvalidInputError(
            "--recognizer-weights is for --protocol aligned: Pipeline embeds with its shipped recogniser"
        )
    config = EvalConfig(
        data=args.data,
        sizes=tuple(args.sizes or LR_SIDES),
        degradation=args.degradation,
        folds=args.folds,
        identification=not args.no_identification,
        max_identities=args.max_identities,
        flip=args.flip,
        gate_px=args.gate_px if args.protocol == "aligned" else None,
    )
    if args.protocol == "pipeline":
        return _run_pipeline_eval(args, config)
    embedder = create_recognizer(device=args.device, backend=args.backend, weights=args.recognizer_weights)
    lr_embedder = create_lr_recognizer(
        embedder, DEFAULT_RECOGNIZER, args.lr_recognizer, device=args.device, backend=args.backend
    )
    own = lr_embedder is embedder
    suffix = "" if own else f"_lr-{Path(args.lr_recognizer).stem}"
    suffix += "" if config.gate_px is None else f"_gate{config.gate_px:g}"
    results = {}
    for spec in args.hallucinator or ["bicubic"]:
        hallucinator = create_hallucinator(spec, device=args.device, backend=args.backend)
        result = evaluate_lfw(config, hallucinator, embedder, lr_embedder=lr_embedder)
        title = hallucinator.name + ("" if own else f" + {lr_embedder.name}")
        title += "" if config.gate_px is None else f", gate_px={config.gate_px:g}"
        results[title] = result
        _report(result, args.out, f"{hallucinator.name}_{config.degradation}{suffix}", title, f"{config.degradation}; ")
    if len(results) > 1:
        plot_accuracy(results, args.out / f"lfw_compare_{config.degradation}.png")
    return 0


def _run_pipeline_eval(args: argparse.Namespace, config) -> int:
    results = {}
    for spec in args.hallucinator or ["bicubic"]:
        gate = 0.0 if spec == "none" else args.gate_px
        lr_recognizer = None if spec == "none" else args.lr_recognizer
        pipe = make_pipeline(
            "bicubic" if spec == "none" else spec,
            args.detector,
            gate,
            args.flip,
            args.device,
            args.backend,
            lr_recognizer,
        )
        result = evaluate_lfw_pipeline(config, pipe, args.detector)
        results[result.meta["hallucinator"]] = result
        name = f"pipeline_{Path(spec).stem}_{args.detector}" + ("_flip" if args.flip else "")
        name += "" if is_original(lr_recognizer) else f"_lr-{Path(lr_recognizer).stem}"
        title = f"pipeline protocol: {result.meta['hallucinator']}, detector {args.detector}"
        _report(result, args.out, name, title + (", flip" if args.flip else ""))
    if len(results) > 1:
        plot_accuracy(results, args.out / f"lfw_compare_pipeline_{args.detector}.png")
    return 0


def _report(result, out: Path, name: str, title: str, detail: str = "") -> None:
    """Write a result's JSON, table and plot, and print the table under a heading."""
    paths = write_outputs(result, out, name)
    meta = result.meta
    print(f"\n## {title} ({detail}{meta['pairs']} pairs, {meta['folds']} folds, {meta['seconds']} s)\n")
    print(markdown_table(result))
    print(f"written: {', '.join(str(p) for p in paths.values())}")
