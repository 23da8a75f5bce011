"""The packaged hallucinators ('default', 'lai' and 'surveillance'): load without pickle, map any LR side to 128,
stay close to bicubic in pixels on the inputs they were trained on while changing the face (they were
trained to), and run the same on ONNX Runtime."""

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


def _lr_as_trained(name: str, face_hr: np.ndarray, side: int) -> np.ndarray:
    """The LR face each model was trained on: `default` on faces cut by the detector's landmarks on the
    tiny face (MTCNN's mean crop error at that side, train/configs/pipeline_finetune.yaml), area-shrunk and
    warped bilinearly to its input side, as Pipeline feeds it; the others on bicubic-shrunk aligned crops."""
    if name != "default":
        return resize_bicubic(face_hr, side)
    from train.config import load_config
    from train.degradations import Degradation

    jitter = load_config("pipeline_finetune")["degradation"]["jitter"]
    bias_only = {s: [*row[:3], 0.0, 0.0, 0.0] for s, row in jitter.items()}
    hr = torch.from_numpy(np.ascontiguousarray(face_hr[..., ::-1])).permute(0, 3, 1, 2).float() / 255
    lr, _ = Degradation(native_side=32, factors=(128 / side,), mode="pipeline", jitter=bias_only)(hr, torch.Generator())
    return np.ascontiguousarray((lr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[..., ::-1])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("side", [8, 12, 16, 24, 32])
def test_maps_every_lr_side_to_hr_close_to_the_truth(face_hr, side, name):
    model = create_hallucinator(name)
    lr = _lr_as_trained(name, face_hr, side)
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


def test_the_hallucinator_file_round_trips_through_its_one_writer_and_reader(tmp_path):
    """train writes and fhsdk reads the same format (fhsdk/models/hallucinator_file.py)."""
    import torch

    from fhsdk.errors import WeightsError
    from fhsdk.hallucinate import NetworkHallucinator
    from fhsdk.models import create_model
    from fhsdk.models.hallucinator_file import read_hallucinator, write_hallucinator

    generator = create_model("edsr", scale=4, num_features=8, num_blocks=1)
    path = write_hallucinator(
        tmp_path / "g.pt",
        arch="edsr",
        arch_kwargs={"scale": 4, "num_features": 8, "num_blocks": 1},
        native_side=16,
        state_dict=generator.state_dict(),
        name="test",
        step=7,
    )
    record = read_hallucinator(path)
    assert (record.arch, record.native_side, record.hr_side, record.step) == ("edsr", 16, 64, 7)
    loaded = NetworkHallucinator.from_file(path)
    assert loaded.native_side == 16 and loaded.hr_side == 64
    probe = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.generator(probe), generator.eval()(probe))
    broken = dict(torch.load(path, weights_only=True))
    del broken["native_side"]
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(WeightsError, match="not a valid fhsdk hallucinator file"):
        read_hallucinator(tmp_path / "broken.pt")
