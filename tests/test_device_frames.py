"""Pieces that keep frames on the device, on their CPU paths: NV12 colour conversion, stage timing."""

import time

import cv2
import numpy as np
import pytest
import torch

from fhsdk.colour import nv12_to_bgr
from fhsdk.errors import InvalidInputError
from fhsdk.stage_timer import StageTimer


def _nv12_of(bgr: np.ndarray) -> np.ndarray:
    """NV12 bytes of a BGR image, through OpenCV's I420 encoder (U and V planes interleaved)."""
    height, width = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    u = i420[height : height + height // 4].reshape(height // 2, width // 2)
    v = i420[height + height // 4 :].reshape(height // 2, width // 2)
    return np.concatenate([i420[:height], np.stack([u, v], axis=-1).reshape(height // 2, width)])


@pytest.mark.parametrize("seed", [0, 1])
def test_nv12_to_bgr_matches_opencv(seed):
    rng = np.random.default_rng(seed)
    random_bytes = rng.integers(0, 256, (54, 96), dtype=np.uint8)  # any NV12 content, 36 x 96 frame
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (72, 128, 3), dtype=np.uint8), (0, 0), 3)
    for nv12 in (random_bytes, _nv12_of(smooth)):
        expected = cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)
        got = nv12_to_bgr(torch.from_numpy(nv12))
        assert got.dtype == torch.uint8 and tuple(got.shape) == expected.shape
        assert np.abs(got.numpy().astype(int) - expected).max() <= 1  # rounding of the coefficients


def test_nv12_to_bgr_refuses_odd_or_wrong_frames():
    for bad in (
        torch.zeros(7, 8, dtype=torch.uint8),
        torch.zeros(6, 7, dtype=torch.uint8),
        torch.zeros(6, 8, dtype=torch.float32),
        torch.zeros(6, 8, 1, dtype=torch.uint8),
    ):
        with pytest.raises(InvalidInputError, match="NV12"):
            nv12_to_bgr(bad)


def test_stage_timer_sums_each_stage_over_its_spans():
    timer = StageTimer("cpu")
    for _ in range(2):
        with timer.stage("detect"):
            time.sleep(0.02)
    with timer.stage("embed"):
        pass
    seconds = timer.seconds()
    assert set(seconds) == {"detect", "embed"}
    assert 0.04 <= seconds["detect"] < 1.0 and seconds["embed"] < seconds["detect"]
    with pytest.raises(RuntimeError), timer.stage("match"):  # a failing stage is still timed
        raise RuntimeError("boom")
    assert "match" in timer.seconds()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_stage_timer_on_cuda_uses_events_and_one_wait():
    timer = StageTimer("cuda")
    x = torch.randn(2048, 2048, device="cuda")
    with timer.stage("matmul"):
        for _ in range(10):
            x = x @ x / 2048
    assert timer.seconds()["matmul"] > 0
    frame = torch.from_numpy(_nv12_of(np.zeros((64, 64, 3), np.uint8))).cuda()
    assert nv12_to_bgr(frame).is_cuda
