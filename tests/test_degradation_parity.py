"""The camera degradation exists twice: in NumPy for evaluation (fhsdk.degrade) and in torch for training
(train.degradations, batched and seeded by the run's generator). With the random draws pinned, the two
must make the same LR face, or a model is trained on one camera and judged on another."""

import numpy as np
import pytest
import skimage.data
import torch

from fhsdk.align import align
from fhsdk.degrade import SurveillanceDegradation, resize_bicubic
from fhsdk.detect import MTCNN
from train.degradations import Degradation


@pytest.fixture(scope="module")
def hr_faces() -> np.ndarray:
    image = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    (found,) = MTCNN().detect(image)
    face = align(image, found.landmarks[:1], 128)
    return np.concatenate([face, face[:, :, ::-1]])  # the face and its mirror image


def _train_chain(hr: np.ndarray, side: int, **pinned) -> np.ndarray:
    degradation = Degradation(native_side=side, factors=(hr.shape[1] / side,), realistic=bool(pinned), **pinned)
    batch = torch.from_numpy(np.ascontiguousarray(hr[..., ::-1])).permute(0, 3, 1, 2).float() / 255
    lr, lr_side = degradation(batch, torch.Generator().manual_seed(0))
    assert lr_side == side
    return (lr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[..., ::-1]


@pytest.mark.parametrize("side", [16, 32])
def test_bicubic_downsampling_is_the_same(hr_faces, side):
    assert np.array_equal(_train_chain(hr_faces, side), resize_bicubic(hr_faces, side))


@pytest.mark.parametrize("sigma, quality", [(0.0, 90), (1.2, 75), (1.5, 40)])
def test_blur_and_jpeg_agree_within_a_grey_level(hr_faces, sigma, quality):
    pinned = {"blur_sigma": (sigma, sigma), "noise_std": (0.0, 0.0), "jpeg_quality": (quality, quality)}
    train = _train_chain(hr_faces, 32, **pinned).astype(np.int16)
    evaluation = SurveillanceDegradation(**pinned)(hr_faces, 32, np.random.default_rng(0)).astype(np.int16)
    difference = np.abs(train - evaluation)
    # cv2's blur rounds to 8 bits and truncates its kernel where torch's does not; JPEG then amplifies
    # single-level differences at a few block edges.
    assert difference.mean() < 1.0, difference.mean()
    assert np.percentile(difference, 99) <= 6, np.percentile(difference, 99)


def test_noise_has_the_same_strength(hr_faces):
    std = 6.0
    pinned = {"blur_sigma": (0.0, 0.0), "noise_std": (std, std), "jpeg_quality": (100, 100)}
    clean = resize_bicubic(hr_faces, 32).astype(np.float64)
    train = _train_chain(hr_faces, 32, **pinned).astype(np.float64) - clean
    evaluation = SurveillanceDegradation(**pinned)(hr_faces, 32, np.random.default_rng(0)).astype(np.float64) - clean
    assert abs(train.std() - evaluation.std()) < 0.15 * std, (train.std(), evaluation.std())
