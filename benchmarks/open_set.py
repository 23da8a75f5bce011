"""Open-set identification: false-positive identification rate (FPIR) against gallery size, and the
threshold that holds a target FPIR at each size (issue 15, 3.10; fhsdk.open_set holds the table).

Distractors: `--strangers` LFW people (one photo each, the first of pairs.txt's images of each person,
seeded order), aligned on MTCNN's landmarks and embedded like an enrolment. Probes of people NOT in
the gallery (the non-mated searches an open-set threshold must refuse):
  - video: every face the default Pipeline finds in `hamilton_clip.mp4` (every `--stride`-th frame, at
    its own size and shrunk by each `--scales` factor, where tiny faces are hallucinated) whose centre
    lies where the labels put the performer; he is not in LFW;
  - lfw: each stranger's photo against the other strangers (leave one out).
A gallery of N strangers drawn at random from the M names probe p as someone when one of them scores
t or more. With K_p(t) of p's M impostor scores at t or above, that happens with probability
1 - C(M - K_p, N) / C(M, N) (drawing without replacement), so FPIR(t, N) is its mean over the probes:
every gallery of N of the M strangers counted, no sampling noise; sizes up to M only. The threshold for
a target FPIR solves that equation. Mated searches: the performer enrolled from his gallery photo
beside N - 1 strangers; a video probe of him is named as a stranger when one scores at or above both t
and his own score, and missed (FNIR) when he is not named.

    python benchmarks/open_set.py --data ../shared/data --out open_set.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from video_identification import LABELS, read_labels  # noqa: E402

from fhsdk.open_set import fpir, none_drawn  # noqa: E402
from fhsdk.threads import apply as apply_threads  # noqa: E402

SIZES = (1, 10, 100, 1000)
FPIRS = (0.01, 0.001)


def strangers(data: Path, count: int, embedder) -> tuple[list[str], np.ndarray]:
    from fhsdk.align import align
    from fhsdk.eval.harness import detect_landmarks, read_image
    from fhsdk.eval.protocol import read_pairs

    root = data / "lfw"
    first = {}
    for image in read_pairs(root).images:
        first.setdefault(image.split("/")[0], image)
    people = sorted(first)
    random.Random(0).shuffle(people)
    images = [first[p] for p in people]
    found = detect_landmarks(root, images)  # cached per image by fhsdk eval
    images = [image for image, ok in zip(images, found.detected) if ok][:count]
    landmarks = found.landmarks[found.detected][:count]
    crops = np.stack(
        [
            align(read_image(root / "images" / image), points, embedder.input_side)[0]
            for image, points in zip(images, landmarks)
        ]
    )
    return [image.split("/")[0] for image in images], embedder(crops)


def video_probes(data: Path, stride: int, scales: list[int]):
    """Embeddings of the performer's faces in the clip at each scale, and the gallery photo's."""
    import fhsdk
    from fhsdk.video import iterate_source

    labels = read_labels(LABELS)
    pipe = fhsdk.Pipeline(min_face_size=12, track=False)
    pipe.enroll("performer", [str(data / "video" / "gallery" / "lin_manuel_miranda.png")])
    frames = list(itertools.islice(iterate_source(str(data / "video" / "hamilton_clip.mp4")), 0, None, stride))
    probes, per_scale = [], {}
    for scale in scales:
        count = 0
        for frame in frames:
            span = labels[frame.index]
            image = (
                frame.image
                if scale == 1
                else cv2.resize(
                    frame.image,
                    (frame.image.shape[1] // scale, frame.image.shape[0] // scale),
                    interpolation=cv2.INTER_AREA,
                )
            )
            for face in pipe.process(image).faces:
                centre = float(face.box[0] + face.box[2]) / 2 / image.shape[1]
                if span is not None and span[0] <= centre <= span[1]:
                    probes.append(face.embedding)
                    count += 1
        per_scale[scale] = count
    return np.stack(probes), pipe.gallery.embeddings[0], per_scale


def threshold_for(scores: np.ndarray, n: int, target: float) -> float:
    low, high = -1.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if fpir(scores, middle, n) > target else (low, middle)
    return round(high, 4)


def mated(scores: np.ndarray, own: np.ndarray, t: float, n: int) -> tuple[float, float]:
    """(share named as a stranger, share not named as him) for the performer's probes, gallery of n."""
    pool = scores.shape[1]
    stranger_wins = 1.0 - none_drawn(pool, (scores >= np.maximum(t, own)[:, None]).sum(axis=1), n - 1)
    named_him = (own >= t) * none_drawn(pool, (scores >= own[:, None]).sum(axis=1), n - 1)
    return float(stranger_wins.mean()), float(1.0 - named_him.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--strangers", type=int, default=4000, help="LFW people (pairs.txt has 4,281)")
    parser.add_argument("--stride", type=int, default=3, help="every k-th frame of the clip")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4], help="clip shrink factors")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    apply_threads(args.threads)

    from fhsdk.pipeline import DEFAULT_THRESHOLD

    probes, photo, per_scale = video_probes(args.data, args.stride, args.scales)
    from fhsdk.embed import Embedder

    names, gallery = strangers(args.data, args.strangers, Embedder("dlib_resnet_v1"))
    video = probes @ gallery.T
    lfw = gallery @ gallery.T
    lfw = lfw[~np.eye(len(lfw), dtype=bool)].reshape(len(lfw), len(lfw) - 1)  # leave one out
    own = probes @ photo
    report = {
        "strangers": len(names),
        "video_probes": per_scale,
        "default_threshold": DEFAULT_THRESHOLD,
        "performer_probe_own_cosine_median": round(float(np.median(own)), 4),
        "rows": [],
    }
    for n in [n for n in SIZES if n < len(names)]:
        row = {"gallery_size": n}
        for domain, scores in (("video", video), ("lfw", lfw)):
            row[f"fpir_at_default_{domain}"] = round(fpir(scores, DEFAULT_THRESHOLD, n), 4)
            for target in FPIRS:
                row[f"threshold_fpir_{target}_{domain}"] = threshold_for(scores, n, target)
        for target in FPIRS:
            t = max(row[f"threshold_fpir_{target}_video"], row[f"threshold_fpir_{target}_lfw"])
            row[f"threshold_fpir_{target}"] = t
            wrong, missed = mated(video, own, t, n)
            row[f"performer_named_as_stranger_at_fpir_{target}"] = round(wrong, 4)
            row[f"performer_fnir_at_fpir_{target}"] = round(missed, 4)
        wrong, missed = mated(video, own, DEFAULT_THRESHOLD, n)
        row["performer_named_as_stranger_at_default"] = round(wrong, 4)
        row["performer_fnir_at_default"] = round(missed, 4)
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
    report["thresholds"] = {
        target: [[r["gallery_size"], r[f"threshold_fpir_{target}"]] for r in report["rows"]] for target in FPIRS
    }
    print(json.dumps(report["thresholds"]))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
