"""Choose the pipeline's default cosine threshold on CelebA training faces (never LFW).

Embeds every aligned face of the training cache (`python -m train.data` builds it), forms every
same-identity pair and every different-identity pair, and prints the thresholds at several false
accept rates, for HR crops and for bicubic LR crops of each side (tiny faces look more alike, so
impostor similarities rise as resolution falls).

    python tools/choose_threshold.py [--cache PATH] [--sides 16 24]
"""

from __future__ import annotations

import argparse

import numpy as np

from fhsdk.degrade import resize_bicubic
from fhsdk.embed import Embedder
from fhsdk.weights import cache_dir


def thresholds(embeddings: np.ndarray, labels: np.ndarray, fars=(1e-2, 1e-3, 1e-4)) -> dict:
    similarity = embeddings @ embeddings.T
    upper = np.triu_indices(len(labels), 1)
    scores = similarity[upper]
    same = labels[upper[0]] == labels[upper[1]]
    impostor = np.sort(scores[~same])[::-1]
    out = {}
    for far in fars:
        threshold = float(impostor[int(far * len(impostor))])
        out[f"far_{far:g}"] = {
            "threshold": round(threshold, 4),
            "true_accept_rate": round(float((scores[same] > threshold).mean()), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=str(cache_dir() / "train" / "celeba_subset_aligned_128_v1.npz"))
    parser.add_argument("--sides", type=int, nargs="*", default=[16, 24])
    args = parser.parse_args()
    with np.load(args.cache, allow_pickle=False) as data:
        crops, labels = data["images"][..., ::-1].copy(), data["labels"]  # the cache is RGB; the SDK is BGR
    embedder = Embedder()
    print(f"{len(labels)} faces of {len(np.unique(labels))} people")
    print("HR:", thresholds(embedder(crops), labels))
    for side in args.sides:
        lr = resize_bicubic(resize_bicubic(crops, side), crops.shape[1])
        print(f"LR {side} px (bicubic):", thresholds(embedder(lr), labels))


if __name__ == "__main__":
    main()
