"""Open-set identification thresholds (issue 15, 3.10): FPIR against gallery size, and the exposed table."""

import itertools

import numpy as np
import pytest

from fhsdk import Gallery, InvalidInputError
from fhsdk.open_set import THRESHOLDS, fpir, suggest_threshold
from fhsdk.pipeline import DEFAULT_THRESHOLD


def test_fpir_counts_every_gallery_of_n_candidates():
    scores = np.random.default_rng(0).uniform(0.5, 1.0, size=(7, 6))
    for n, t in itertools.product([1, 2, 4, 6], [0.6, 0.8, 0.95]):
        named = [
            np.mean([scores[p, list(subset)].max() >= t for subset in itertools.combinations(range(6), n)])
            for p in range(7)
        ]
        assert fpir(scores, t, n) == pytest.approx(np.mean(named))


def test_thresholds_rise_with_gallery_size_above_the_pair_level_default():
    assert set(THRESHOLDS) == {0.01, 0.001}
    for target in THRESHOLDS:
        values = [suggest_threshold(n, target) for n in (1, 3, 10, 30, 100, 300, 1000, 10**6)]
        assert values == sorted(values) and values[-1] > DEFAULT_THRESHOLD
    assert suggest_threshold(100, 0.001) >= suggest_threshold(100, 0.01)
    gallery = Gallery(4, "fp")
    for name in "abc":
        gallery.add(name, np.random.default_rng(ord(name)).normal(size=4))
    assert gallery.suggest_threshold() == suggest_threshold(3)
    for bad in ({"gallery_size": 0}, {"gallery_size": 10, "fpir": 0.5}, {"gallery_size": 2.5}):
        with pytest.raises(InvalidInputError):
            suggest_threshold(**bad)
