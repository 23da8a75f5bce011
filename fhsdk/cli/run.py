"""`fhsdk run`: identify the faces of a video, stream or camera against a gallery."""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from tqdm import tqdm

from fhsdk.cli.common import add_gallery_key_argument, add_pipeline_arguments, make_pipeline, positive_int
from fhsdk.outputs import AnnotatedVideoWriter, EventLog, IdentityLog
from fhsdk.video import file_info

HELP = "identify the faces of a video against a gallery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file, rtsp:// or http:// URL, or webcam index")
    parser.add_argument("--gallery", type=Path, required=True, help="gallery file written by `fhsdk enroll`")
    add_gallery_key_argument(parser)
    parser.add_argument("--out", type=Path, help="annotated video to write (.mp4 or .avi), at the source's frame rate")
    parser.add_argument("--events", type=Path, help="JSON-lines events to write, ending with a summary per identity")
    parser.add_argument("--batch-frames", type=positive_int, default=4, help="frames per batch (1 = lowest latency)")
    parser.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many frames")
    parser.add_argument(
        "--no-fusion",
        action="store_true",
        help="name each face from its own frame only (no identity fused over its track)",
    )
    parser.add_argument("--no-tracking", action="store_true", help="no track ids, no fusion, no track events")
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    pipe = make_pipeline(args, gallery=args.gallery)
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
                    writer = AnnotatedVideoWriter(
                        args.out, fps or 25.0, (result.image.shape[1], result.image.shape[0]), pipe.threshold
                    )
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
    print(
        json.dumps(
            {
                "frames": frames,
                "faces_per_frame": round(faces / max(frames, 1), 2),
                "frames_with_face": frames_with_face,
                "frames_named": named,
                "identities": identities.summary(),
                "fps": round(frames / max(seconds, 1e-9), 2),
                "ms_per_frame_by_stage": {k: round(1000 * v / max(frames, 1), 1) for k, v in stage_seconds.items()},
            }
        )
    )
    return 0
