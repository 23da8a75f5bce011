"""The packaged hallucinators ('default', 'lai' and 'surveillance'): load without pickle, map any LR side to 128,
stay close to bicubic in pixels while changing the face (they were trained to), and run the same on
ONNX Runtime."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fhsdk
from fhsdk.align import align
from fhsdk.degrade import resize_bicubic
from fhsdk.demo import astronaut_bgr
from fhsdk.eval.metrics import psnr_ssim
from fhsdk.hallucinate import PACKAGED, create_hallucinator

NAMES = sorted(PACKAGED)


def test_every_model_is_packaged():
    assert all(path.is_file() for path in PACKAGED.values()), PACKAGED


@pytest.mark.parametrize("name", NAMES)
def test_weights_file_is_the_documented_one_and_loads_safely(name):
    WEIGHTS = PACKAGED[name]
    digest = hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    assert digest in (Path(__file__).parents[1] / "docs" / "MODEL_CARD.md").read_text()
    record = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert record["arch"] == "edsr" and record["native_side"] == 32 and record["hr_side"] == 128


@pytest.fixture(scope="module")
def face_hr():
    face = astronaut_bgr()
    landmarks = fhsdk.Pipeline(hallucinator="bicubic").detect(face)[0].landmarks
    return align(face, landmarks, 128)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("side", [8, 12, 16, 24, 32])
def test_maps_every_lr_side_to_hr_close_to_the_truth(face_hr, side, name):
    model = create_hallucinator(name)
    lr = resize_bicubic(face_hr, side)
    sr = model(lr)
    assert sr.shape == (1, 128, 128, 3) and sr.dtype == np.uint8
    bicubic = resize_bicubic(lr, 128)
    psnr_sr, _ = psnr_ssim(sr, face_hr)
    psnr_bicubic, _ = psnr_ssim(bicubic, face_hr)
    assert not np.array_equal(sr, bicubic)
    assert psnr_sr > psnr_bicubic - 1.0  # trained with L1 + identity: not worse than bicubic in pixels


@pytest.mark.parametrize("name", NAMES)
def test_onnxruntime_matches_torch(face_hr, name):
    torch_model = create_hallucinator(name)
    ort_model = create_hallucinator(name).use_backend("onnxruntime")
    lr = resize_bicubic(face_hr, 16)
    difference = np.abs(torch_model(lr).astype(int) - ort_model(lr).astype(int))
    assert difference.max() <= 1


def test_pipeline_uses_it_by_default():
    assert fhsdk.Pipeline().hallucinator.name == "hallucinator_default"
