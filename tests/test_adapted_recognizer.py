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


def test_pipeline_uses_it_for_hallucinated_faces_only(original):
    pipe = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="adapted")
    assert pipe.lr_embedder.name == "dlib_resnet_v1 adapted"
    assert pipe.embedder.fingerprint == original.fingerprint == pipe.gallery.recognizer_fingerprint
    plain = fhsdk.Pipeline(hallucinator="bicubic")  # the default: the ensemble with the original (fhsdk.pipeline)
    assert plain.lr_embedder.name == "dlib_resnet_v1 + dlib_resnet_v1 adapted"
    assert plain.lr_embedder.members[0] is plain.embedder
    assert plain.embedder.fingerprint == plain.gallery.recognizer_fingerprint  # galleries stay the original's
    own = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="original")
    assert own.lr_embedder is own.embedder


def test_an_install_without_it_says_so(monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(PACKAGED_RECOGNIZERS, "adapted", tmp_path / "absent.pt")
    with pytest.raises(fhsdk.WeightsError, match="no 'adapted' recogniser"):
        fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="adapted")
    with caplog.at_level("WARNING", logger="fhsdk.pipeline"):  # the default only: the original, with a warning
        pipe = fhsdk.Pipeline(hallucinator="bicubic")
    assert pipe.lr_embedder is pipe.embedder
    assert "no adapted recogniser is packaged" in caplog.text


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


def test_an_ensemble_embeds_with_both_and_keeps_their_mean_direction(original, adapted):
    from fhsdk.demo import astronaut_bgr

    pipe = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="original+adapted")
    ensemble = pipe.lr_embedder
    assert ensemble.members[0] is pipe.embedder  # 'original' is the pipeline's own recogniser, not a copy
    assert ensemble.name == "dlib_resnet_v1 + dlib_resnet_v1 adapted"
    face = pipe.detect(astronaut_bgr())[0]
    crops = pipe.align(astronaut_bgr(), [face], size=150)
    a, b, both = original(crops), adapted(crops), ensemble(crops)
    expected = (a + b) / np.linalg.norm(a + b)
    np.testing.assert_allclose(both, expected, atol=1e-5)
    assert np.linalg.norm(both) == pytest.approx(1.0, abs=1e-5)
    assert float(a[0] @ b[0]) < 0.999  # the two do differ on this face, so the mean is not either one
    rgb = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32))
    np.testing.assert_allclose(ensemble.embed_tensor(rgb), both, atol=1e-4)  # Pipeline's path: on tensors


@pytest.mark.parametrize("spec", ["adapted+adapted", "original+", "+adapted"])
def test_an_ensemble_that_names_a_member_twice_or_none_is_refused(spec):
    with pytest.raises(fhsdk.WeightsError, match="a member twice or an empty one"):
        fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer=spec)


def test_training_can_use_the_ensemble_as_the_identity_losses_recognizer(original, adapted):
    # C-Face's last stage for Pipeline's default pair: `recognizer.weights: original+adapted`.
    from fhsdk.demo import astronaut_bgr
    from train.recognizer import build_recognizer

    recognizer = build_recognizer({"name": "dlib_resnet_v1", "weights": "original+adapted"}).eval()
    pipe = fhsdk.Pipeline(hallucinator="bicubic", lr_recognizer="original")
    crops = pipe.align(astronaut_bgr(), pipe.detect(astronaut_bgr())[:1], size=150)
    rgb = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)) / 255
    with torch.no_grad():
        features = torch.nn.functional.normalize(recognizer(rgb), dim=1).numpy()
    a, b = original(crops), adapted(crops)
    np.testing.assert_allclose(features, (a + b) / np.linalg.norm(a + b), atol=1e-4)
