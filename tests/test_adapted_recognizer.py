"""The packaged adapted recogniser (`fhsdk/weights/recognizer_adapted.pt`, train/configs/distill.yaml): dlib's
ResNet fine-tuned so a hallucinated face lands near the original's embedding of the HR face. With
`Pipeline(lr_recognizer="adapted")` it embeds only the faces Pipeline hallucinates; galleries stay the
original's. Whether it helps is measured on held-out people (train.validate_pipeline, docs/RESULTS.md):
on one face it may not, so no test here claims it does."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fhsdk
from fhsdk.embed import PACKAGED_RECOGNIZERS, Embedder
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


def test_adapted_recognizer_is_named_and_fingerprinted_apart(original, adapted):
    assert adapted.name == "dlib_resnet_v1 adapted"
    assert adapted.fingerprint != original.fingerprint and adapted.dim == original.dim


def test_pipeline_uses_it_on_request_for_hallucinated_faces_only(original):
    pipe = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="adapted")
    assert pipe.lr_embedder.name == "dlib_resnet_v1 adapted"
    assert pipe.embedder.fingerprint == original.fingerprint == pipe.gallery.recognizer_fingerprint
    plain = fhsdk.Pipeline(hallucinator="bicubic")  # the default: the original for every face (fhsdk.pipeline)
    assert plain.lr_embedder is plain.embedder


def test_an_install_without_it_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(PACKAGED_RECOGNIZERS, "adapted", tmp_path / "absent.pt")
    with pytest.raises(fhsdk.WeightsError, match="no 'adapted' recogniser"):
        fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="adapted")


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


def test_training_can_use_it_as_the_identity_losses_recognizer(original, adapted):
    # C-Face's last stage: `recognizer.weights: adapted` trains a hallucinator through the adapted recogniser.
    from train.recognizer import build_recognizer

    backbone = build_recognizer({"name": "dlib_resnet_v1", "weights": "adapted"}).backbone
    trained_through = backbone.state_dict()
    assert all(torch.equal(trained_through[k], v) for k, v in adapted.network.state_dict().items())
    assert not torch.equal(trained_through["fc.weight"], original.network.state_dict()["fc.weight"])
