"""MTCNN detector: building blocks against hand-worked cases, the cascade on real photographs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from fhsdk.detect import MTCNN, Detections, batched_nms, box_overlap, nms, pyramid_scales
from fhsdk.detect.crop import crop_resize
from fhsdk.detect.mtcnn_nets import load_pretrained, max_pool_same
from fhsdk.errors import InvalidInputError
from fhsdk.weights import package_file

LFW_SAMPLES = [
    "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "George_W_Bush/George_W_Bush_0001.jpg",
    "Serena_Williams/Serena_Williams_0001.jpg",
    "Colin_Powell/Colin_Powell_0001.jpg",
    "Gloria_Macapagal_Arroyo/Gloria_Macapagal_Arroyo_0001.jpg",
    "Tony_Blair/Tony_Blair_0001.jpg",
]


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    torch.manual_seed(0)
    return MTCNN()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])  # RGB -> BGR


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1])


@pytest.fixture(scope="module")
def lfw_images(lfw_dir) -> list[np.ndarray]:
    import cv2

    images = []
    for name in LFW_SAMPLES:
        path = lfw_dir / "images" / name
        if not path.is_file():
            pytest.skip(f"{path} missing from the LFW folder")
        images.append(cv2.imread(str(path)))
    return images


def _assert_plausible_face(landmarks: np.ndarray, box: np.ndarray) -> None:
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert left_eye[0] < nose[0] < right_eye[0]
    assert np.all(landmarks[:, 0] > box[0]) and np.all(landmarks[:, 0] < box[2])
    assert np.all(landmarks[:, 1] > box[1]) and np.all(landmarks[:, 1] < box[3])


# --- building blocks -------------------------------------------------------------------------


def _tf_same_max_pool(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    # TensorFlow's rule written out: ceil(n / stride) outputs, pad split with the extra at the end.
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, pads, value=float("-inf")), kernel, stride)


@pytest.mark.parametrize("kernel, size", [(2, 7), (2, 8), (2, 125), (3, 22), (3, 46)])
def test_max_pool_same_matches_tensorflow_rule(kernel, size):
    x = torch.randn(1, 2, size, size + 3 if kernel == 2 else size)
    torch.testing.assert_close(max_pool_same(kernel, 2)(x), _tf_same_max_pool(x, kernel, 2))


def test_pretrained_nets_load_with_expected_shapes():
    pnet, rnet, onet = (load_pretrained(n) for n in ("pnet", "rnet", "onet"))
    prob, reg = pnet(torch.zeros(1, 3, 12, 12))
    assert prob.shape == (1, 1, 1) and reg.shape == (1, 4, 1, 1)
    prob, reg = rnet(torch.zeros(2, 3, 24, 24))
    assert prob.shape == (2,) and reg.shape == (2, 4)
    prob, reg, points = onet(torch.zeros(2, 3, 48, 48))
    assert prob.shape == (2,) and reg.shape == (2, 4) and points.shape == (2, 10)
    assert torch.all((prob >= 0) & (prob <= 1))


def test_box_overlap_union_and_min():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [2.0, 2.0, 4.0, 4.0], [20.0, 20.0, 30.0, 30.0]])
    assert torch.allclose(box_overlap(a, b), torch.tensor([[50 / 150, 4 / 100, 0.0]]))
    assert torch.allclose(box_overlap(a, b, "min"), torch.tensor([[0.5, 1.0, 0.0]]))


def test_nms_keeps_best_of_overlapping_boxes_and_respects_groups():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    groups = torch.tensor([0, 0, 0, 1])  # box 3 lives in another image: untouched by box 1
    assert batched_nms(boxes, scores, groups, 0.5).tolist() == [1, 2, 3]
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


def test_crop_resize_identity_and_border_padding():
    image = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 8, 8)
    whole = crop_resize([image], torch.tensor([0]), torch.tensor([[0.0, 0.0, 8.0, 8.0]]), 8)
    assert torch.allclose(whole[0], image)
    # Right half of the box lies outside the image: it reads as zeros, the left half is the image.
    cut = crop_resize([image], torch.tensor([0]), torch.tensor([[4.0, 0.0, 12.0, 8.0]]), 8)
    assert torch.allclose(cut[0, :, :, :4], image[:, :, 4:]) and torch.all(cut[0, :, :, 4:] == 0)


def test_pyramid_scales():
    scales = pyramid_scales(250, 250, 20, 0.709)
    assert scales[0] == pytest.approx(0.6)
    assert 250 * scales[-1] >= 12 > 250 * scales[-1] * 0.709
    assert pyramid_scales(10, 300, 12, 0.709) == []


# --- validation ------------------------------------------------------------------------------


def test_min_face_size_below_window_raises():
    with pytest.raises(InvalidInputError, match="min_face_size"):
        MTCNN(min_face_size=11)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.6, 0.7, 1.5)},
        {"thresholds": 0.7},
        {"scale_factor": 1.0},
        {"scale_factor": 0.0},
    ],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(InvalidInputError):
        MTCNN(**kwargs)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((32, 32, 3), np.float32),
        np.zeros((2, 32, 32, 3), np.uint8),
        np.zeros((0, 32, 3), np.uint8),
        [np.zeros((32, 32, 3), np.uint8), "image.jpg"],
        "image.jpg",
    ],
)
def test_bad_images_raise_with_a_fix(detector, bad):
    with pytest.raises(InvalidInputError):
        detector.detect(bad)


def test_bgra_and_grey_frames_are_read_as_the_pipeline_reads_them(detector, astronaut):
    """Detectors accept what Pipeline accepts (fhsdk.images.as_bgr_image): alpha dropped, grey expanded."""
    import cv2

    (bgr,) = detector.detect(astronaut)
    (bgra,) = detector.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))
    assert len(bgr.boxes) and np.array_equal(bgr.boxes, bgra.boxes)
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    (from_grey,), (from_grey_bgr,) = detector.detect(grey), detector.detect(np.repeat(grey[:, :, None], 3, axis=2))
    assert np.array_equal(from_grey.boxes, from_grey_bgr.boxes)


def test_empty_list_and_tiny_image(detector):
    assert detector.detect([]) == []
    (found,) = detector.detect(np.full((8, 8, 3), 128, np.uint8))  # smaller than P-Net's window
    assert isinstance(found, Detections) and len(found) == 0


# --- real images -----------------------------------------------------------------------------


def test_astronaut_has_one_face_with_plausible_landmarks(detector, astronaut):
    (found,) = detector.detect(astronaut)
    assert len(found) == 1
    assert found.boxes.dtype == np.float32 and found.landmarks.shape == (1, 5, 2)
    assert found.scores[0] > 0.95
    box = found.boxes[0]
    # Eileen Collins' face sits around x 180-270, y 60-175 in the 512 x 512 photo.
    assert 150 < box[0] < 210 and 240 < box[2] < 300 and 40 < box[1] < 100 and 150 < box[3] < 200
    _assert_plausible_face(found.landmarks[0], box)


def test_grey_image_is_accepted(detector, astronaut):
    grey = astronaut.mean(axis=2).astype(np.uint8)
    (found,) = detector.detect(grey)
    assert len(found) == 1 and found.scores[0] > 0.9


def test_images_without_faces(detector, coffee):
    flat = np.full((240, 320, 3), 127, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for found in detector.detect([coffee, flat, noise]):
        assert len(found) == 0 or found.scores.max() < 0.9


def test_batched_equals_per_image(detector, astronaut, coffee, lfw_images):
    images = [astronaut, coffee, *lfw_images[:3], astronaut[100:400, 50:450]]  # mixed sizes
    batched = detector.detect(images)
    for image, together in zip(images, batched):
        (alone,) = detector.detect(image)
        assert len(alone) == len(together)
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=1e-2)
        np.testing.assert_allclose(together.scores, alone.scores, atol=1e-4)
        np.testing.assert_allclose(together.landmarks, alone.landmarks, atol=1e-2)
        assert np.all(np.diff(together.scores) <= 0)  # best first


def test_lfw_central_face_found(detector, lfw_images):
    for image, found in zip(lfw_images, detector.detect(lfw_images)):
        centre = np.array(image.shape[1::-1]) / 2
        contains = ((found.boxes[:, :2] <= centre) & (found.boxes[:, 2:] >= centre)).all(axis=1)
        assert contains.any()
        best = int(np.flatnonzero(contains)[0])
        assert found.scores[best] > 0.9
        _assert_plausible_face(found.landmarks[best], found.boxes[best])


def test_faces_cut_by_the_border(detector, astronaut):
    # Cut the face through the middle from every side: no crash, boxes may reach past the frame.
    cuts = [astronaut[:, 225:], astronaut[:, :225], astronaut[115:, :], astronaut[:115, :]]
    results = detector.detect(cuts)
    assert len(results) == 4
    for found in results:
        assert np.all(np.isfinite(found.boxes)) and np.all(np.isfinite(found.landmarks))
    # A face with its left third cut off is still found, with its box reaching past the left edge.
    (found,) = detector.detect(np.ascontiguousarray(astronaut[:, 200:]))
    assert len(found) >= 1 and found.scores[0] > 0.7 and found.boxes[0, 0] < 5


def test_min_face_size_12_searches_more_and_finds_at_least_as_much(astronaut):
    small = MTCNN(min_face_size=12)
    assert len(pyramid_scales(512, 512, 12, 0.709)) > len(pyramid_scales(512, 512, 20, 0.709))
    (found,) = small.detect(astronaut)
    assert len(found) >= 1 and found.scores[0] > 0.95


def test_landmarks_agree_with_dlib_five_point(detector, lfw_images):
    dlib = pytest.importorskip("dlib")
    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat"))
    )
    errors = []
    for image, found in zip(lfw_images, detector.detect(lfw_images)):
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        faces = hog(rgb, 1)
        if len(faces) != 1 or len(found) == 0:
            continue
        points = np.array([[p.x, p.y] for p in predictor(rgb, faces[0]).parts()], dtype=np.float64)
        # dlib's 5 points: corners of the eye on the image's right (0, 1), of the other eye (2, 3), nose base.
        dlib_eyes = np.stack([points[2:4].mean(axis=0), points[0:2].mean(axis=0)])
        centre = np.array(image.shape[1::-1]) / 2
        ours = found.landmarks[
            np.argmin(np.linalg.norm((found.boxes[:, :2] + found.boxes[:, 2:]) / 2 - centre, axis=1))
        ]
        interocular = np.linalg.norm(dlib_eyes[1] - dlib_eyes[0])
        errors.append(np.linalg.norm(ours[:2] - dlib_eyes, axis=1).mean() / interocular)
    assert len(errors) >= 4
    assert np.mean(errors) < 0.15


def _greedy_nms_reference(boxes, scores, threshold, mode, groups):
    """The textbook loop on full overlap matrices: keep the best, drop what overlaps it, repeat."""
    overlap = box_overlap(boxes, boxes, mode) > threshold
    overlap &= groups[:, None] == groups[None, :]
    alive = torch.ones(len(boxes), dtype=torch.bool)
    keep = []
    for i in scores.argsort(descending=True, stable=True).tolist():
        if alive[i]:
            keep.append(i)
            alive &= ~overlap[i]
    return keep


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("n", [1, 40, 1500])
def test_nms_equals_the_textbook_loop_with_ties_and_groups(mode, n):
    g = torch.Generator().manual_seed(n)
    corner = torch.randint(0, 300, (n, 2), generator=g).float()
    side = torch.randint(12, 48, (n, 1), generator=g).float()  # integer grid: many overlaps sit on the threshold
    boxes = torch.cat([corner, corner + side], dim=1)
    scores = torch.rand(n, generator=g).round(decimals=1)  # many ties
    groups = torch.randint(0, 3, (n,), generator=g)
    assert nms(boxes, scores, 0.5, mode, groups).tolist() == _greedy_nms_reference(boxes, scores, 0.5, mode, groups)


def test_detector_registry_builds_by_name_and_takes_a_new_detector(monkeypatch, astronaut):
    """A new detector is one class with @register_detector; Pipeline and create_detector find it by name."""
    from fhsdk import Pipeline
    from fhsdk.detect import RetinaFace, create_detector, list_detectors, registry
    from fhsdk.errors import ConfigError

    assert {"mtcnn", "retinaface"} <= set(list_detectors())
    assert isinstance(create_detector("mtcnn", min_face_size=24), MTCNN)
    assert isinstance(create_detector("retinaface", min_face_size=24), RetinaFace)
    with pytest.raises(InvalidInputError, match="unknown detector 'yolo'"):
        create_detector("yolo")

    monkeypatch.setattr(
        registry.DETECTORS, "_items", dict(registry.DETECTORS._items)
    )  # the original back after the test

    @registry.register_detector("whole_image")
    class WholeImage:
        """Reports the whole image as one face with fixed landmarks: the detector contract, nothing more."""

        MIN_FACE_SIZE_FLOOR = 30.0

        def __init__(self, min_face_size: float = 30.0, device: str = "cpu"):
            self.min_face_size, self.config = min_face_size, {"detector": "whole_image"}

        def use_backend(self, kind: str):
            return self

        def detect(self, images):
            images = images if isinstance(images, list) else [images]
            return [
                Detections(
                    np.array([[0, 0, i.shape[1], i.shape[0]]], np.float32),
                    np.ones(1, np.float32),
                    (
                        np.array([[0.32, 0.3], [0.68, 0.3], [0.5, 0.53], [0.34, 0.68], [0.66, 0.68]])
                        * [i.shape[1], i.shape[0]]
                    )[None].astype(np.float32),
                )
                for i in images
            ]

    pipe = Pipeline(detector="whole_image", hallucinator="bicubic", track=False, min_face_size=40)
    (face,) = pipe.detect(astronaut)
    assert face.box.tolist() == [0, 0, 512, 512]
    with pytest.raises(ConfigError, match="min_face_size"):
        Pipeline(detector="whole_image", hallucinator="bicubic", min_face_size=20)
