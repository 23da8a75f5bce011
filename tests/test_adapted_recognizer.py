"""The packaged adapted recogniser (`fhsdk/weights/recognizer_adapted.pt`, train/configs/distill.yaml): dlib's
ResNet fine-tuned so a hallucinated face lands near the original's embedding of the HR face. Pipeline embeds
only the faces it hallucinates with it; galleries stay the original's."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fhsdk
from fhsdk.align import align
from fhsdk.degrade import degrade
from fhsdk.demo import astronaut_bgr
from fhsdk.embed import PACKAGED_RECOGNIZERS, Embedder
from fhsdk.hallucinate import create_hallucinator
from fhsdk.models import create_model

ADAPTED = PACKAGED_RECOGNIZERS["adapted"]


def test_weights_file_is_packaged_documented_float16_and_loads_safely():
    assert ADAPTED.is_file()
    digest = hashlib.sha256(ADAPTED.read_bytes()).hexdigest()
    assert digest in (Path(__file__).parents[1] / "docs" / "MODEL_CARD.md").read_text()
    state = torch.load(ADAPTED, map_location="cpu", weights_only=True)
    shipped = create_model("dlib_resnet_v1", pretrained=True).state_dict()
    assert state.keys() == shipped.keys()
    assert all(tensor.dtype == torch.float16 for tensor in state.values())


@pytest.fixture(scope="module")
def original():
    return Embedder()


@pytest.fixture(scope="module")
def adapted():
    return Embedder(weights="adapted")


@pytest.fixture(scope="module")
def face_hr():
    face = astronaut_bgr()
    landmarks = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="original").detect(face)[0].landmarks
    return align(face, landmarks, 128)  # 1 x 128 x 128 x 3


def test_adapted_recognizer_is_named_and_fingerprinted_apart(original, adapted):
    assert adapted.name == "dlib_resnet_v1 adapted"
    assert adapted.fingerprint != original.fingerprint and adapted.dim == original.dim


def test_hallucinated_face_lands_nearer_the_original_hr_embedding(original, adapted, face_hr):
    target = original(face_hr)[0]  # what a gallery holds
    hallucinator = create_hallucinator("default")
    for side in (12, 16):
        restored = hallucinator(degrade(face_hr, side, "bicubic", seed=side))
        frozen, student = original(restored)[0], adapted(restored)[0]
        assert float(student @ target) > float(frozen @ target) + 0.005, side
    # An HR face keeps (nearly) its embedding, though Pipeline never sends one to the adapted recogniser.
    assert float(adapted(face_hr)[0] @ target) > 0.97


def test_pipeline_uses_it_by_default_for_hallucinated_faces_only(original):
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    assert pipe.lr_embedder.name == "dlib_resnet_v1 adapted"
    assert pipe.embedder.fingerprint == original.fingerprint == pipe.gallery.recognizer_fingerprint
    plain = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="original")
    assert plain.lr_embedder is plain.embedder


def test_an_install_without_it_falls_back_to_the_original(monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(PACKAGED_RECOGNIZERS, "adapted", tmp_path / "absent.pt")
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    assert pipe.lr_embedder is pipe.embedder and "no adapted recogniser" in caplog.text
    with pytest.raises(fhsdk.WeightsError, match="no 'adapted' recogniser"):
        Embedder(weights="adapted")


def test_a_modified_file_is_refused(monkeypatch, tmp_path):
    copy = tmp_path / ADAPTED.name
    data = bytearray(ADAPTED.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    (tmp_path / (ADAPTED.name + ".sha256")).write_text((ADAPTED.parent / (ADAPTED.name + ".sha256")).read_text())
    monkeypatch.setitem(PACKAGED_RECOGNIZERS, "adapted", copy)
    with pytest.raises(fhsdk.WeightsError, match="SHA-256"):
        Embedder(weights="adapted")
    assert np.isfinite(Embedder(weights=ADAPTED)(np.zeros((1, 150, 150, 3), np.uint8))).all()  # the file itself
