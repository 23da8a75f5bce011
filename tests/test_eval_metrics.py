import numpy as np
import pytest

from fhsdk import DataNotFoundError, InvalidInputError
from fhsdk.degrade import degrade, resize_bicubic
from fhsdk.eval import metrics
from fhsdk.eval.protocol import read_pairs


def test_best_threshold_separates_separable_scores():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([False, False, False, True, True, True])
    threshold = metrics.best_threshold(scores, same)
    assert 0.3 < threshold < 0.7


def test_kfold_accuracy_uses_thresholds_from_other_folds():
    rng = np.random.default_rng(1)
    same = np.tile([True] * 50 + [False] * 50, 10)
    fold = np.repeat(np.arange(10), 100)
    scores = np.where(same, rng.normal(0.6, 0.1, same.size), rng.normal(0.2, 0.1, same.size))
    mean, std, per_fold = metrics.kfold_accuracy(scores, same, fold)
    assert len(per_fold) == 10 and 0.95 < mean <= 1.0 and std < 0.05
    # Random scores give chance accuracy.
    mean_random, _, _ = metrics.kfold_accuracy(rng.uniform(size=same.size), same, fold)
    assert 0.4 < mean_random < 0.6


def test_verification_rate_at_far():
    negatives = np.linspace(0, 0.5, 1000)
    positives = np.array([0.45, 0.6, 0.7, 0.2])
    scores = np.concatenate([positives, negatives])
    same = np.concatenate([np.ones(4, bool), np.zeros(1000, bool)])
    # FAR 0.1% of 1000 negatives = 1 false accept allowed: threshold is the second-highest negative.
    assert metrics.verification_rate(scores, same, 1e-3) == pytest.approx(0.5)


def test_rank1_identification_perfect_and_chance():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(20), 5)
    centres = rng.normal(size=(20, 16))
    embeddings = centres[labels] + 0.01 * rng.normal(size=(100, 16))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    assert metrics.rank1_identification(embeddings, embeddings, labels, runs=3)[0] == 1.0
    noise = rng.normal(size=(100, 16))
    assert metrics.rank1_identification(embeddings, noise, labels, runs=3)[0] < 0.3


def test_psnr_ssim_identical_and_degraded():
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    psnr, ssim = metrics.psnr_ssim(crops, crops)
    assert psnr == np.inf or psnr > 90
    assert ssim == pytest.approx(1.0)
    noisy = np.clip(crops.astype(int) + rng.integers(-20, 21, crops.shape), 0, 255).astype(np.uint8)
    psnr_noisy, ssim_noisy = metrics.psnr_ssim(noisy, crops)
    assert 15 < psnr_noisy < 40 and ssim_noisy < 0.99


def test_degradations_shapes_and_determinism():
    rng = np.random.default_rng(4)
    hr = rng.integers(0, 256, size=(3, 128, 128, 3), dtype=np.uint8)
    assert degrade(hr, 16).shape == (3, 16, 16, 3)
    a = degrade(hr, 12, "surveillance", seed=5)
    b = degrade(hr, 12, "surveillance", seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, degrade(hr, 12, "bicubic"))
    with pytest.raises(InvalidInputError):
        degrade(hr, 12, "motion")
    with pytest.raises(InvalidInputError):
        resize_bicubic(hr.astype(np.float32), 12)


def test_bicubic_downsampling_is_antialiased():
    # A fine checkerboard must average to grey, not alias into a pattern.
    board = (np.indices((128, 128)).sum(0) % 2 * 255).astype(np.uint8)
    hr = np.repeat(board[None, :, :, None], 3, axis=3)
    lr = resize_bicubic(hr, 16)
    assert abs(lr.mean() - 127.5) < 3 and lr.std() < 6


def test_missing_lfw_folder_raises(tmp_path):
    with pytest.raises(DataNotFoundError):
        read_pairs(tmp_path)


def test_truncated_pairs_file_raises(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "pairs.txt").write_text("10\t300\nAaron\t1\t2\n")
    with pytest.raises(DataNotFoundError, match="truncated"):
        read_pairs(tmp_path)


def test_real_pairs_file_parses(lfw_dir):
    pairs = read_pairs(lfw_dir)
    assert len(pairs.same) == 6000 and pairs.same.sum() == 3000
    assert np.bincount(pairs.fold).tolist() == [600] * 10
    assert len(pairs.images) == 7701


def test_landmarks_are_detected_only_for_the_images_asked_for(lfw_dir, tmp_path, monkeypatch):
    """A quick run (--folds 2) detected all 11,585 LFW images first; now each image is cached on its
    own and only images no earlier run saw are detected."""
    from fhsdk.detect.mtcnn import MTCNN
    from fhsdk.eval.harness import detect_landmarks
    from fhsdk.eval.protocol import read_pairs

    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    seen = []

    class Counting(MTCNN):
        def detect(self, frames):
            seen.extend(range(len(frames)))
            return super().detect(frames)

    detector = Counting(min_face_size=20)
    images = sorted(set(read_pairs(lfw_dir).images))[:5]
    first = detect_landmarks(lfw_dir, images[:3], detector)
    assert len(seen) == 3 and first.detected.all()
    again = detect_landmarks(lfw_dir, images, detector)
    assert len(seen) == 5  # only the two new images
    np.testing.assert_array_equal(again.landmarks[:3], first.landmarks)


def test_undecided_pairs_count_as_errors():
    rng = np.random.default_rng(5)
    same = np.tile([True] * 50 + [False] * 50, 4)
    fold = np.repeat(np.arange(4), 100)
    scores = np.where(same, rng.normal(0.8, 0.02, same.size), rng.normal(0.2, 0.02, same.size))  # separable
    valid = rng.uniform(size=same.size) > 0.25
    mean, _, per_fold = metrics.kfold_accuracy(scores, same, fold, valid=valid)
    # Every decided pair is right, every undecided one wrong, whether it was a match or not.
    assert per_fold == pytest.approx([valid[fold == k].mean() for k in range(4)])
    # The threshold comes from decided pairs only: garbage scores on undecided pairs change nothing.
    scores_garbage = np.where(valid, scores, rng.uniform(-5, 5, same.size))
    assert metrics.kfold_accuracy(scores_garbage, same, fold, valid=valid)[0] == pytest.approx(mean)


def test_rank1_counts_missed_queries_as_failures():
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(10), 4)
    embeddings = rng.normal(size=(10, 16))[labels] + 0.01 * rng.normal(size=(40, 16))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    found = np.ones(40, dtype=bool)
    found[::4] = False  # one image of each person is never found as a query
    rank1, _ = metrics.rank1_identification(embeddings, embeddings, labels, runs=5, seed=0, found=found)
    assert 0.6 < rank1 < 0.8  # 3 queries per person, about one of them missed (unless it is the gallery image)
