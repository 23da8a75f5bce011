"""What the recogniser(s) for hallucinated faces cost per frame, side by side in one run.

`Pipeline.process` on the same small real frame as `benchmarks/busy_host.py` (the first frame of
`hamilton_clip.mp4` shrunk 4x, one face of about 16 px that the default gate hallucinates), once per
`--lr-recognizer` setting, in alternating rounds so the host's drifting load falls on every setting
alike. Reported: median milliseconds per frame end to end and in the embed stage
(`FrameResult.timings`), and each setting's ratio to the first.

    python benchmarks/lr_recognizer_cost.py --data ../shared/data --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from busy_host import small_frame  # noqa: E402

import fhsdk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (video/hamilton_clip.mp4)")
    parser.add_argument(
        "--lr-recognizer", nargs="+", default=["original", "original+adapted"], help="settings to compare"
    )
    parser.add_argument("--frames", type=int, default=20, help="frames per setting and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    frame = small_frame(args.data)
    pipes = {
        spec: fhsdk.Pipeline(min_face_size=12, track=False, lr_recognizer=spec, threads=args.threads)
        for spec in args.lr_recognizer
    }
    faces = next(iter(pipes.values())).process(frame).faces  # also a warm-up
    if not any(face.hallucinated for face in faces):
        raise SystemExit("no face of this frame was hallucinated: nothing to compare")
    total = {spec: [] for spec in pipes}
    embed = {spec: [] for spec in pipes}
    for _ in range(args.rounds):
        for spec, pipe in pipes.items():
            pipe.process(frame)  # warm-up of this setting after the other's
            started = time.perf_counter()
            embed_s = sum(pipe.process(frame).timings.get("embed", 0.0) for _ in range(args.frames))
            total[spec].append((time.perf_counter() - started) / args.frames)
            embed[spec].append(embed_s / args.frames)
    first = args.lr_recognizer[0]
    report = {"frame": f"{frame.shape[1]}x{frame.shape[0]}", "faces": len(faces), "settings": {}}
    for spec in pipes:
        ms, embed_ms = 1000 * statistics.median(total[spec]), 1000 * statistics.median(embed[spec])
        report["settings"][spec] = {
            "ms_per_frame": round(ms, 2),
            "embed_ms_per_frame": round(embed_ms, 2),
            "frame_time_vs_first": round(statistics.median(total[spec]) / statistics.median(total[first]), 3),
            "embed_time_vs_first": round(statistics.median(embed[spec]) / statistics.median(embed[first]), 3),
        }
        print(spec, json.dumps(report["settings"][spec]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
