"""Open-set identification: the threshold that keeps false identifications rare in a gallery of N people.

A threshold chosen on pairs (DEFAULT_THRESHOLD: 1% false accepts per pair) does not hold for a gallery:
a face of someone not enrolled is compared with all N people, and it is named as one of them when the
best of N impostor scores passes the threshold. The false-positive identification rate (FPIR) grows
with N: 1 - F(t)^N for an impostor score distribution F. `benchmarks/open_set.py` measures it on real
faces (the performer of hamilton_clip.mp4 as the pipeline sees him, and LFW's people) against galleries
of LFW strangers, and THRESHOLDS below is its table (docs/RESULTS.md, open set).

Measured for the default pipeline (dlib_resnet_v1 recogniser, default hallucinator, MTCNN); another
recogniser or hallucinator needs its own run of the benchmark.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fhsdk.errors import InvalidInputError

# fpir -> ((gallery size, cosine threshold), ...), from
#   python benchmarks/open_set.py --data ../shared/data --out open_set.json
# the largest threshold of the two probe sets (video faces, LFW faces) at each size
THRESHOLDS: dict[float, tuple[tuple[int, float], ...]] = {
    0.01: ((1, 0.9112), (10, 0.9288), (100, 0.9419), (1000, 0.952)),
    0.001: ((1, 0.9289), (10, 0.9422), (100, 0.9527), (1000, 0.9613)),
}


def none_drawn(pool: int, hits: np.ndarray, n: int) -> np.ndarray:
    """Per row, the chance that n of `pool` items drawn at random (without replacement) miss all `hits`
    of them: C(pool - hits, n) / C(pool, n)."""
    hits = np.asarray(hits, dtype=np.float64)
    free = pool - hits
    lgamma = np.vectorize(math.lgamma, otypes=[np.float64])
    log_p = lgamma(free + 1) - lgamma(np.maximum(free - n, 0) + 1) - math.lgamma(pool + 1) + math.lgamma(pool - n + 1)
    return np.where(free >= n, np.exp(np.minimum(log_p, 0.0)), 0.0)


def fpir(scores: np.ndarray, threshold: float, gallery_size: int) -> float:
    """The false-positive identification rate of non-mated probes against every gallery of `gallery_size`
    of the M candidates: `scores` holds each probe's cosine to each candidate (probes x M)."""
    return float(np.mean(1.0 - none_drawn(scores.shape[1], (scores >= threshold).sum(axis=1), gallery_size)))


def suggest_threshold(gallery_size: int, fpir: float = 0.01) -> float:
    """The cosine threshold at which about `fpir` of the faces of people not enrolled are named as
    someone in a gallery of `gallery_size` identities (interpolated in log size; past 1,000, the
    measured range, the 1,000 value, which then lets more than `fpir` through)."""
    if fpir not in THRESHOLDS:
        raise InvalidInputError(f"fpir={fpir!r} was not measured: use one of {', '.join(map(str, sorted(THRESHOLDS)))}")
    if isinstance(gallery_size, bool) or not isinstance(gallery_size, numbers.Integral) or gallery_size < 1:
        raise InvalidInputError(f"gallery_size must be an integer >= 1 (identities), got {gallery_size!r}")
    table = THRESHOLDS[fpir]
    if gallery_size <= table[0][0]:
        return table[0][1]
    for (n0, t0), (n1, t1) in zip(table, table[1:]):
        if gallery_size <= n1:
            share = (math.log(gallery_size) - math.log(n0)) / (math.log(n1) - math.log(n0))
            return round(t0 + share * (t1 - t0), 4)
    return table[-1][1]
