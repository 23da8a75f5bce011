import cv2
import numpy as np
import pytest
import skimage.data

from fhsdk import InvalidInputError
from fhsdk.align import CANONICAL_TEMPLATE, align, as_bgr_image, crop_transforms, estimate_similarity, interocular_px


def _rotation(angle, scale, shift):
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_similarity_recovers_known_transform_per_face():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(7, 5, 2))
    truths = np.stack([_rotation(rng.uniform(-1, 1), rng.uniform(0.2, 3), rng.uniform(-50, 50, 2)) for _ in range(7)])
    dst = np.einsum("nij,npj->npi", truths[:, :, :2], src) + truths[:, None, :, 2]
    np.testing.assert_allclose(estimate_similarity(src, dst), truths, atol=1e-9)


def test_landmarks_on_the_template_map_to_template_pixels():
    face = CANONICAL_TEMPLATE * 200 + [150, 50]
    for size in (8, 16, 128):
        matrix = crop_transforms(face, size)[0]
        mapped = face @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(mapped, CANONICAL_TEMPLATE * size - 0.5, atol=1e-9)


def test_align_matches_cv2_warp_when_not_supersampled():
    image = skimage.data.astronaut()[:, :, ::-1].copy()
    face = CANONICAL_TEMPLATE * 100 + [180, 60]  # 100 px region -> 128 px crop: upsampling, no supersampling
    crop = align(image, face, 128)[0]
    reference = cv2.warpAffine(image, crop_transforms(face, 128)[0], (128, 128), flags=cv2.INTER_LINEAR)
    # Interior pixels agree to rounding (cv2 uses fixed-point bilinear weights).
    assert np.abs(crop[2:-2, 2:-2].astype(int) - reference[2:-2, 2:-2]).max() <= 2


def test_lr_and_hr_crops_cover_the_same_region():
    image = skimage.data.astronaut()[:, :, ::-1].copy()
    face = CANONICAL_TEMPLATE * 180 + [160, 30]
    hr = align(image, face, 128)
    lr = align(image, face, 16)
    shrunk = cv2.resize(hr[0], (16, 16), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - lr[0]).mean() < 6


def test_batched_alignment_equals_one_by_one():
    image = skimage.data.astronaut()[:, :, ::-1].copy()
    faces = np.stack([CANONICAL_TEMPLATE * 150 + [150, 40], CANONICAL_TEMPLATE * 150 + [100, 200]])
    batched = align(image, faces, 32)
    for i in range(2):
        np.testing.assert_array_equal(batched[i], align(image, faces[i], 32)[0])


def test_face_beyond_border_is_padded_black():
    image = np.full((100, 100, 3), 200, dtype=np.uint8)
    face = CANONICAL_TEMPLATE * 80 + [-40, -40]
    crop = align(image, face, 32)[0]
    assert crop[0, 0].max() == 0 and crop[-1, -1].min() == 200


def test_grey_and_bgra_frames_are_accepted():
    grey = np.full((50, 60), 7, dtype=np.uint8)
    assert as_bgr_image(grey).shape == (50, 60, 3)
    bgra = np.zeros((50, 60, 4), dtype=np.uint8)
    assert as_bgr_image(bgra).shape == (50, 60, 3)


@pytest.mark.parametrize(
    "image, landmarks",
    [
        (np.zeros((10, 10, 3), dtype=np.float32), np.zeros((1, 5, 2))),
        (np.zeros((10, 10, 2), dtype=np.uint8), np.zeros((1, 5, 2))),
        ("frame.jpg", np.zeros((1, 5, 2))),
        (np.zeros((10, 10, 3), dtype=np.uint8), np.zeros((1, 4, 2))),
        (np.zeros((10, 10, 3), dtype=np.uint8), np.full((1, 5, 2), np.nan)),
    ],
)
def test_bad_input_raises_clear_error(image, landmarks):
    with pytest.raises(InvalidInputError):
        align(image, landmarks, 16)


def test_empty_landmarks_give_empty_batch():
    assert align(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 5, 2)), 16).shape == (0, 16, 16, 3)


def test_interocular_distance_scales_with_side():
    assert interocular_px(32) == pytest.approx(2 * interocular_px(16))
    assert 0.3 < interocular_px(1) < 0.4


def test_landmarks_on_one_point_are_refused_without_a_division_by_zero():
    """Five coincident points give a similarity of scale 0; align divided by it (a RuntimeWarning and
    a nonsense supersampling factor) before it refused."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(InvalidInputError, match="one point"):
            align(np.zeros((10, 10, 3), np.uint8), np.full((1, 5, 2), 3.0), 16)
