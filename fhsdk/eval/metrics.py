"""Verification, identification and image-quality metrics."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold that maximises accuracy on these pairs (midpoint between neighbouring scores)."""
    order = np.argsort(scores)
    sorted_scores, sorted_same = scores[order], same[order]
    # Accuracy when the threshold sits just above sorted_scores[i]: negatives at or below i are right,
    # positives above i are right.
    negatives_below = np.cumsum(~sorted_same)
    positives_above = sorted_same.sum() - np.cumsum(sorted_same)
    correct = np.concatenate([[sorted_same.sum()], negatives_below + positives_above])
    best = int(np.argmax(correct))
    candidates = np.concatenate([[sorted_scores[0] - 1e-6], sorted_scores])
    upper = np.concatenate([sorted_scores, [sorted_scores[-1] + 1e-6]])
    return float((candidates[best] + upper[best]) / 2)


def kfold_accuracy(
    scores: np.ndarray, same: np.ndarray, fold: np.ndarray, valid: np.ndarray | None = None
) -> tuple[float, float, list[float]]:
    """LFW's protocol: each fold is scored with the threshold chosen on the other folds.

    `valid`: pairs that could be decided at all (the query's face was found); the threshold is chosen on
    the valid pairs of the other folds, and every invalid pair counts as an error."""
    valid = np.ones(len(scores), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    accuracies = []
    for k in np.unique(fold):
        train, test = (fold != k) & valid, fold == k
        threshold = best_threshold(scores[train], same[train])
        correct = ((scores[test] > threshold) == same[test]) & valid[test]
        accuracies.append(float(correct.mean()))
    return float(np.mean(accuracies)), float(np.std(accuracies)), accuracies


def verification_rate(scores: np.ndarray, same: np.ndarray, far: float = 1e-3) -> float:
    """True accept rate at the threshold where the false accept rate is `far` (over all pairs)."""
    negatives = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(negatives)))
    threshold = negatives[allowed] if allowed < len(negatives) else -np.inf
    return float((scores[same] > threshold).mean())


def rank1_identification(
    gallery_embeddings: np.ndarray,
    query_embeddings: np.ndarray,
    labels: np.ndarray,
    runs: int = 10,
    seed: int = 0,
    found: np.ndarray | None = None,
) -> tuple[float, float]:
    """Lai et al.: per run, one random image per identity is the (HR) gallery, all others are queries.

    gallery_embeddings and query_embeddings are row-aligned over the same images (HR and LR versions).
    `found`: per image, whether its query face was found; a query that was not is a miss.
    """
    found = np.ones(len(labels), dtype=bool) if found is None else np.asarray(found, dtype=bool)
    rng = np.random.default_rng(seed)
    identities = np.unique(labels)
    scores = []
    for _ in range(runs):
        chosen = np.array([rng.choice(np.flatnonzero(labels == identity)) for identity in identities])
        is_query = np.ones(len(labels), dtype=bool)
        is_query[chosen] = False
        similarity = query_embeddings[is_query] @ gallery_embeddings[chosen].T
        predicted = labels[chosen][np.argmax(similarity, axis=1)]
        scores.append(float(((predicted == labels[is_query]) & found[is_query]).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def psnr_ssim(restored: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean PSNR and SSIM over a batch of uint8 BGR crops, on luminance (Y of YCbCr), as SR papers do."""

    def luminance(batch: np.ndarray) -> np.ndarray:
        b, g, r = (batch[..., i].astype(np.float64) for i in range(3))
        return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0

    psnrs, ssims = [], []
    for a, b in zip(luminance(restored), luminance(reference)):
        psnrs.append(peak_signal_noise_ratio(b, a, data_range=255))
        ssims.append(
            structural_similarity(b, a, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        )
    return float(np.mean(psnrs)), float(np.mean(ssims))
