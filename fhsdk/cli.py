"""The `fhsdk` command line. Each subcommand has an `add_*_arguments` and a `run_*` function."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fhsdk.errors import FHSDKError


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", required=True)
    lfw = sub.add_parser("lfw", help="low-resolution LFW verification and rank-1 identification")
    lfw.add_argument("--data", type=Path, required=True, help="the LFW folder (pairs.txt, images/)")
    lfw.add_argument("--protocol", choices=["aligned", "pipeline"], default="aligned",
                     help="aligned: queries aligned on the HR image, then degraded (the papers' protocol); pipeline: "
                          "whole query images shrunk so the face is s px, detected, aligned, gated, hallucinated and "
                          "embedded by Pipeline itself, detection misses counted as failures")
    lfw.add_argument("--hallucinator", action="append", default=None,
                     help="'bicubic', a packaged model ('default', 'lai', 'surveillance') or a .pt file; with "
                          "--protocol pipeline also 'none' (gate_px=0: no face is hallucinated); "
                          "repeat to compare several (default: bicubic)")
    lfw.add_argument("--detector", default="mtcnn", help="--protocol pipeline: the Pipeline's detector")
    lfw.add_argument("--gate-px", type=float, default=None,
                     help="--protocol pipeline: hallucinate faces whose region is smaller (default: Pipeline's)")
    lfw.add_argument("--flip", action="store_true",
                     help="flip test-time augmentation: each query's embedding averages it and its mirror image")
    lfw.add_argument("--sizes", type=int, nargs="+", default=None, help="LR sides in px (default 8 12 16 24 32)")
    lfw.add_argument("--degradation", choices=["bicubic", "surveillance"], default="bicubic")
    lfw.add_argument("--folds", type=int, default=None, help="only the first K folds (quick runs)")
    lfw.add_argument("--max-identities", type=int, default=None, help="limit the identification set")
    lfw.add_argument("--no-identification", action="store_true")
    lfw.add_argument("--device", default="cpu")
    lfw.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "tensorrt", "auto"],
                     help="runtime for the recogniser and hallucinators (results agree to float tolerance)")
    lfw.add_argument("--recognizer-weights", type=Path, default=None,
                     help="a recogniser fine-tuned during training (`python -m train.export_weights RUN --recognizer`) "
                          "instead of dlib's shipped weights; the tables name it")
    lfw.add_argument("--out", type=Path, default=Path("out/eval"))


def run_eval(args: argparse.Namespace) -> int:
    from fhsdk.align import LR_SIDES
    from fhsdk.embed import Embedder
    from fhsdk.errors import InvalidInputError
    from fhsdk.eval.harness import EvalConfig, evaluate_lfw
    from fhsdk.eval.report import markdown_table, plot_accuracy, write_outputs
    from fhsdk.hallucinate import create_hallucinator

    if args.protocol == "aligned" and (args.gate_px is not None or args.detector != "mtcnn"
                                       or "none" in (args.hallucinator or [])):
        raise InvalidInputError("--gate-px, --detector and the 'none' hallucinator belong to --protocol pipeline")
    if args.protocol == "pipeline" and args.recognizer_weights is not None:
        raise InvalidInputError("--recognizer-weights is for --protocol aligned: Pipeline embeds with its shipped recogniser")
    config = EvalConfig(
        data=args.data,
        sizes=tuple(args.sizes or LR_SIDES),
        degradation=args.degradation,
        folds=args.folds,
        identification=not args.no_identification,
        max_identities=args.max_identities,
        flip=args.flip,
    )
    if args.protocol == "pipeline":
        return _run_pipeline_eval(args, config)
    embedder = Embedder(device=args.device, backend=args.backend, weights=args.recognizer_weights)
    results = {}
    for spec in args.hallucinator or ["bicubic"]:
        hallucinator = create_hallucinator(spec, device=args.device)
        if hasattr(hallucinator, "use_backend"):
            hallucinator.use_backend(args.backend)
        result = evaluate_lfw(config, hallucinator, embedder)
        results[hallucinator.name] = result
        paths = write_outputs(result, args.out, f"{hallucinator.name}_{config.degradation}")
        print(f"\n## {hallucinator.name} ({config.degradation}; {result.meta['pairs']} pairs, "
              f"{result.meta['folds']} folds, {result.meta['seconds']} s)\n")
        print(markdown_table(result))
        print(f"written: {', '.join(str(p) for p in paths.values())}")
    if len(results) > 1:
        plot_accuracy(results, args.out / f"lfw_compare_{config.degradation}.png")
    return 0


def _run_pipeline_eval(args: argparse.Namespace, config) -> int:
    from fhsdk.eval.end_to_end import evaluate_lfw_pipeline, make_pipeline
    from fhsdk.eval.report import markdown_table, plot_accuracy, write_outputs
    results = {}
    for spec in args.hallucinator or ["bicubic"]:
        gate = 0.0 if spec == "none" else args.gate_px
        pipe = make_pipeline("bicubic" if spec == "none" else spec, args.detector, gate, args.flip, args.device, args.backend)
        result = evaluate_lfw_pipeline(config, pipe, args.detector)
        results[result.meta["hallucinator"]] = result
        name = f"pipeline_{Path(spec).stem}_{args.detector}" + ("_flip" if args.flip else "")
        paths = write_outputs(result, args.out, name)
        print(f"\n## pipeline protocol: {result.meta['hallucinator']}, detector {args.detector}"
              f"{', flip' if args.flip else ''} ({result.meta['pairs']} pairs, {result.meta['folds']} folds, "
              f"{result.meta['seconds']} s)\n")
        print(markdown_table(result))
        print(f"written: {', '.join(str(p) for p in paths.values())}")
    if len(results) > 1:
        plot_accuracy(results, args.out / f"lfw_compare_pipeline_{args.detector}.png")
    return 0


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--hallucinator", default="default", help="'default', 'lai', 'surveillance', 'bicubic' or a .pt file")
    parser.add_argument("--face-px", type=float, default=16.0, help="side of the face region in the scene, px")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--camera", type=parse_camera, default=None, metavar="BLUR,NOISE,JPEG",
                        help="camera blur sigma (frame px), sensor noise std (0-255) and JPEG quality "
                             "(default %s)" % ",".join(f"{v:g}" for v in _demo_camera()))
    parser.add_argument("--device", default="cpu")


def _demo_camera() -> tuple:
    from fhsdk.demo import DEMO_CAMERA

    return DEMO_CAMERA


def parse_camera(text: str) -> tuple[float, float, int]:
    """BLUR,NOISE,JPEG for argparse (also tools/demo_similarity.py): checked, JPEG quality as an int."""
    try:
        blur, noise, quality = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--camera takes BLUR,NOISE,JPEG, e.g. 0.6,2,70; got {text!r}") from None
    if blur < 0 or noise < 0 or not 1 <= quality <= 100:
        raise argparse.ArgumentTypeError("--camera: blur and noise must be >= 0 and JPEG quality in 1..100")
    return blur, noise, int(quality)


def run_demo(args: argparse.Namespace) -> int:
    from fhsdk.demo import run_demo as demo

    summary = demo(args.out, args.hallucinator, args.face_px, args.frames, args.device, camera=args.camera)
    for label in ("hallucination_on", "hallucination_off"):
        part = summary[label]
        print(f"{label:18s}: named in {part['frames_named']}/{part['frames_with_face']} frames with a face "
              f"(hallucinator {part['hallucinator']}) -> {part['video']}, {part['events']}")
    print(f"summary: {args.out / 'summary.json'}")
    return 0


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse reports anything else as a usage error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument("--hallucinator", default="default", help="'default', 'lai', 'surveillance', 'bicubic' or a .pt file")
    parser.add_argument("--gate-px", type=float, default=24.0, help="hallucinate faces whose region is smaller (px)")
    parser.add_argument("--threshold", type=float, default=None, help="cosine similarity needed to name a face")
    parser.add_argument("--detector", default=None,
                        help="face detector by name, 'mtcnn' or 'retinaface' (fhsdk.detect.list_detectors(); default: the Pipeline's)")
    parser.add_argument("--min-face", type=float, default=20.0,
                        help="smallest face the detector looks for (px; >= 12 for MTCNN; RetinaFace adds a pass over the "
                             "frame enlarged 48/min-face times below 48, up to 4x)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every compute pool (default: fhsdk.threads.DEFAULT_THREADS, which holds "
                             "up on a busy host; about cores / cameras on a dedicated one)")


def _add_gallery_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gallery-key-env", metavar="NAME",
                        help="environment variable holding the gallery's encryption key (e.g. FHSDK_GALLERY_KEY; "
                             "make one with: python -c 'import fhsdk; print(fhsdk.Gallery.generate_key())')")


def _gallery_key(args) -> str | None:
    """The key named by --gallery-key-env; read from the environment so it stays out of shell history."""
    import os

    from fhsdk.errors import InvalidInputError

    if not args.gallery_key_env:
        return None
    key = os.environ.get(args.gallery_key_env, "").strip()
    if not key:
        raise InvalidInputError(f"--gallery-key-env names {args.gallery_key_env}, but that environment variable is "
                                f"not set or empty: export it with the gallery's key")
    return key


def _pipeline(args, gallery=None):
    from fhsdk.pipeline import DEFAULT_THRESHOLD, Pipeline

    return Pipeline(device=args.device, hallucinator=args.hallucinator, gate_px=args.gate_px,
                    threshold=args.threshold if args.threshold is not None else DEFAULT_THRESHOLD,
                    min_face_size=args.min_face, gallery=gallery, gallery_key=_gallery_key(args) if gallery else None,
                    threads=args.threads, track=not getattr(args, "no_tracking", False), fuse=not getattr(args, "no_fusion", False),
                    **({"detector": args.detector} if args.detector else {}))


def add_enroll_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, help="a folder of name/*.jpg or name.jpg, or one image (with --name)")
    parser.add_argument("--gallery", type=Path, required=True, help="gallery file to create or extend (.npz)")
    parser.add_argument("--name", help="identity for a single image")
    _add_gallery_key_argument(parser)
    _add_pipeline_arguments(parser)


def run_enroll(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fhsdk.errors import InvalidInputError

    from fhsdk.gallery import check_writable

    key = _gallery_key(args)  # a missing key fails now, not after enrolling everyone
    args.gallery = check_writable(args.gallery)  # so does an unwritable path; 'people' extends people.npz
    pipe = _pipeline(args, gallery=args.gallery if args.gallery.exists() else None)
    suffixes = {".jpg", ".jpeg", ".png", ".bmp"}
    if args.images.is_file():
        if not args.name:
            raise InvalidInputError("enrolling a single image needs --name")
        people = {args.name: [args.images]}
    elif args.images.is_dir():
        people = {}
        for entry in sorted(args.images.iterdir()):
            if entry.is_dir():
                files = sorted(f for f in entry.iterdir() if f.suffix.lower() in suffixes)
                if files:
                    people[entry.name] = files
            elif entry.suffix.lower() in suffixes:
                people.setdefault(entry.stem, []).append(entry)
    else:
        raise InvalidInputError(f"{args.images} is neither an image nor a folder")
    for name, files in tqdm(people.items(), desc="enrol"):
        pipe.enroll(name, files)
    path = _save_or_rescue(pipe.gallery, args.gallery, key)
    print(f"{_count(len(people), 'person', 'people')} enrolled; gallery {path} holds "
          f"{_count(len(pipe.gallery.identities), 'identity', 'identities')}")
    return 0


def _save_or_rescue(gallery, path, key):
    """Save the enrolled gallery; if its path became unwritable meanwhile, save it in the temp folder
    instead and say where, so that no enrolment work is lost."""
    import tempfile
    from pathlib import Path

    from fhsdk.errors import OutputError

    try:
        return gallery.save(path, key=key)
    except OutputError as error:
        rescue = gallery.save(Path(tempfile.mkdtemp(prefix="fhsdk-enrol-")) / "gallery.npz", key=key)
        raise OutputError(f"{error}. The enrolled gallery was saved to {rescue} instead: move it into place") from error


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file, rtsp:// or http:// URL, or webcam index")
    parser.add_argument("--gallery", type=Path, required=True, help="gallery file written by `fhsdk enroll`")
    _add_gallery_key_argument(parser)
    parser.add_argument("--out", type=Path, help="annotated video to write (.mp4 or .avi), at the source's frame rate")
    parser.add_argument("--events", type=Path, help="JSON-lines events to write, ending with a summary per identity")
    parser.add_argument("--batch-frames", type=_positive_int, default=4, help="frames per batch (1 = lowest latency)")
    parser.add_argument("--max-frames", type=_positive_int, default=None, help="stop after this many frames")
    parser.add_argument("--no-fusion", action="store_true",
                        help="name each face from its own frame only (no identity fused over its track)")
    parser.add_argument("--no-tracking", action="store_true", help="no track ids, no fusion, no track events")
    _add_pipeline_arguments(parser)


def run_run(args: argparse.Namespace) -> int:
    import itertools
    import json
    import time

    from tqdm import tqdm

    from fhsdk.outputs import AnnotatedVideoWriter, EventLog, IdentityLog
    from fhsdk.video import file_info

    pipe = _pipeline(args, gallery=args.gallery)
    source = int(args.video) if args.video.isdigit() else args.video
    fps, total = file_info(source)  # None, None for cameras and URLs
    if args.max_frames is not None:
        total = min(total, args.max_frames) if total else args.max_frames
    frames_with_face = named = frames = faces = 0
    stage_seconds: dict[str, float] = {}
    identities = IdentityLog()
    started = time.perf_counter()
    writer = events = results = None
    try:
        events = EventLog(args.events) if args.events else None
        keep_frames = args.out is not None
        results = pipe.stream(source, batch_frames=args.batch_frames, keep_images=keep_frames)
        for result in tqdm(itertools.islice(results, args.max_frames), desc="frames", total=total, unit="frame"):
            if keep_frames:
                if writer is None:
                    writer = AnnotatedVideoWriter(args.out, fps or 25.0, (result.image.shape[1], result.image.shape[0]),
                                                  pipe.threshold)
                writer.write(result.image, result)
            for event in result.events:
                if events:
                    events.write(event)
            identities.add(result)
            frames += 1
            faces += len(result.faces)
            for stage, seconds in result.timings.items():
                stage_seconds[stage] = stage_seconds.get(stage, 0.0) + seconds
            frames_with_face += bool(result.faces)
            named += any(f.identity for f in result.faces)
        if events:
            events.write({"event": "summary", "frames": frames, "identities": identities.summary()})
    finally:
        if results is not None:
            results.close()  # stops the decode thread when --max-frames ends the run early
        if writer:
            writer.close()
        if events:
            events.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"frames": frames, "faces_per_frame": round(faces / max(frames, 1), 2),
                      "frames_with_face": frames_with_face, "frames_named": named,
                      "identities": identities.summary(),
                      "fps": round(frames / max(seconds, 1e-9), 2),
                      "ms_per_frame_by_stage": {k: round(1000 * v / max(frames, 1), 1) for k, v in stage_seconds.items()}}))
    return 0


def _runtime_command(module: str, add: str, run: str):
    import importlib

    def add_arguments(parser):
        getattr(importlib.import_module(module), add)(parser)

    def run_command(args):
        return getattr(importlib.import_module(module), run)(args)

    return add_arguments, run_command


# which -> (script of benchmarks/, its flag for the JSON it writes or None)
BENCHMARKS = {"kernels": ("bench_kernels.py", "--json"), "models": ("bench_models.py", "--out"),
              "detector": ("detector_accuracy.py", "--out"), "video": ("video_identification.py", "--out"),
              "crowd": ("crowd_throughput.py", "--out"), "gallery": ("gallery_search.py", None)}
DEFAULT_BENCH_DIR = Path("out/bench")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_BENCH_DIR,
                        help=f"folder for the benchmark's JSON (default {DEFAULT_BENCH_DIR}, like out/eval and out/demo); "
                             "the script's own --out/--json wins")
    parser.add_argument("which", choices=sorted(BENCHMARKS), help="which benchmark script of benchmarks/ to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its own arguments (see fhsdk bench WHICH --help)")


def run_bench(args: argparse.Namespace) -> int:
    """Runs benchmarks/<script> of the source tree (benchmarks are not part of the installed package)."""
    import runpy

    from fhsdk.errors import DataNotFoundError

    name, out_flag = BENCHMARKS[args.which]
    script = Path(__file__).resolve().parents[1] / "benchmarks" / name
    if not script.is_file():
        raise DataNotFoundError(f"{script} not found: the benchmarks ship with the source tree; install it with pip install -e .")
    script_args, out_dir = list(args.args), args.out_dir
    if "--out-dir" in script_args:  # also accepted after WHICH
        at = script_args.index("--out-dir")
        out_dir, script_args = Path(script_args[at + 1]), script_args[:at] + script_args[at + 2:]
    if out_flag and not any(a == out_flag or a.startswith(out_flag + "=") for a in script_args):
        out_dir.mkdir(parents=True, exist_ok=True)
        script_args += [out_flag, str(out_dir / f"{Path(name).stem}.json")]
    saved = sys.argv
    sys.argv = [str(script), *script_args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved
    return 0


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from fhsdk.hallucinate import PACKAGED
    from fhsdk.runtime.export import add_export_arguments

    add_export_arguments(parser, packaged={name: path for name, path in PACKAGED.items() if path.is_file()})


_export = (_add_export_arguments, _runtime_command("fhsdk.runtime.export", "add_export_arguments", "run_export")[1])
_build = _runtime_command("fhsdk.runtime.build", "add_build_engine_arguments", "run_build_engine")
_verify = _runtime_command("fhsdk.runtime.verify", "add_verify_arguments", "run_verify")

COMMANDS = {
    "demo": ("run the built-in demo (no data needed)", add_demo_arguments, run_demo),
    "run": ("identify the faces of a video against a gallery", add_run_arguments, run_run),
    "enroll": ("add people to a gallery from images", add_enroll_arguments, run_enroll),
    "eval": ("evaluate recognition of low-resolution faces", add_eval_arguments, run_eval),
    "export": ("export a model to ONNX and check it against PyTorch", *_export),
    "build-engine": ("build a TensorRT engine from ONNX (like trtexec)", *_build),
    "verify": ("check a backend against PyTorch FP32", *_verify),
    "bench": ("run a benchmark of benchmarks/ (kernels, models, detector, video)", add_bench_arguments, run_bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhsdk", description="Identity-preserving face hallucination SDK")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command][2](args)
    except FHSDKError as error:
        print(f"fhsdk: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
