"""dlib's ResNet face recogniser in PyTorch: the .dat reader, the weight cache and parity with dlib."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhsdk.errors import InvalidInputError, WeightsError
from fhsdk.models import create_model, dlib_resnet
from fhsdk.models.dlib_format import TAG_OR_SKIP, DlibStream, read_dnn
from fhsdk.models.dlib_resnet import (
    INPUT_SIZE,
    RGB_MEAN,
    RGB_SCALE,
    STAGES,
    cached_weights_path,
    dlib_resnet_v1,
    load_dlib_weights,
    normalize_rgb,
)
from fhsdk.weights import package_file

PARITY_FACES = 24  # the issue asks for at least 20 real faces


def _model_file(name: str):
    return package_file("face_recognition_models", f"models/{name}")


@pytest.fixture(scope="module")
def dat_path():
    return _model_file("dlib_face_recognition_resnet_model_v1.dat")


@pytest.fixture(scope="module")
def model(tmp_path_factory, dat_path):
    # Convert into a private cache: tests must not depend on (or write to) the user's cache.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FHSDK_CACHE", str(tmp_path_factory.mktemp("cache")))
        return dlib_resnet_v1(pretrained=True)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    return tmp_path


def _inputs(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return normalize_rgb(torch.rand(n, 3, INPUT_SIZE, INPUT_SIZE, generator=generator) * 255)


# ----------------------------------------------------------------------------------------------
# The serialization format


def test_stream_decodes_dlib_integers_and_floats():
    # Control byte: payload length in the low nibble, sign in bit 7; payload little-endian.
    stream = DlibStream(b"\x01\x02" + b"\x81\x1c" + b"\x02\x00\x01" + b"\x03\x0a\xd7\xa3\x81\x1c" + b"10")
    assert stream.read_int() == 2
    assert stream.read_int() == -28
    assert stream.read_int() == 256
    assert stream.read_float() == pytest.approx(0.04, rel=1e-6)  # 0xa3d70a * 2**-28
    assert stream.read_bool() is True and stream.read_bool() is False
    assert stream.at_end()


def test_reader_recovers_the_shipped_network(dat_path):
    net = read_dnn(dat_path)
    assert net.loss.kind == "loss_metric"
    assert net.loss.fields["margin"] == pytest.approx(0.04)
    assert net.input.fields["size"] == (150, 150)
    assert net.input.fields["mean"] == pytest.approx(RGB_MEAN, abs=1e-4)
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29  # batch norms already folded
    assert all(layer.fields["mode"] == "conv" for layer in net.layers if layer.kind == "affine")
    fc = net.layers[-1]
    assert fc.kind == "fc" and fc.fields["bias"] is None and fc.fields["weight"].shape == (256, 128)
    assert net.structure.count(TAG_OR_SKIP) == 14 + 2 * 4  # tag1 per block; tag2, skip1 per downsampling
    assert net.structure == dlib_resnet.DlibResNet().dlib_structure()


def test_reader_rejects_missing_garbage_and_truncated_files(tmp_path, dat_path):
    with pytest.raises(WeightsError, match="does not exist"):
        read_dnn(tmp_path / "missing.dat")
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(WeightsError, match="not a dlib DNN model file"):
        read_dnn(garbage)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(dat_path.read_bytes()[: 1 << 20])
    with pytest.raises(WeightsError, match="unexpected end of data"):
        read_dnn(truncated)


@pytest.fixture(scope="module")
def dat_bytes(dat_path):
    return dat_path.read_bytes()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keep=st.floats(0.0, 1.0, exclude_max=True), flip=st.integers(0, 2_000), bit=st.integers(0, 7))
def test_damaged_files_raise_weights_error_only(tmp_path, dat_bytes, keep, flip, bit):
    # Any truncation fails cleanly; a flipped bit in the structural header either fails cleanly
    # or still parses (dlib's format has no checksum), but never raises anything else.
    data = dat_bytes
    truncated = tmp_path / "cut.dat"
    truncated.write_bytes(data[: int(keep * len(data))])
    with pytest.raises(WeightsError):
        read_dnn(truncated)
    damaged = bytearray(data)
    damaged[flip] ^= 1 << bit
    flipped = tmp_path / "flip.dat"
    flipped.write_bytes(bytes(damaged))
    try:
        read_dnn(flipped)
    except WeightsError:
        pass


@pytest.mark.parametrize("other", ["mmod_human_face_detector.dat", "shape_predictor_5_face_landmarks.dat"])
def test_other_dlib_models_are_rejected_with_weights_error(other, private_cache):
    with pytest.raises(WeightsError):
        dlib_resnet_v1(pretrained=True, weights_path=_model_file(other))


# ----------------------------------------------------------------------------------------------
# The weight cache


def test_second_load_uses_the_cache(private_cache, dat_path, monkeypatch):
    first = load_dlib_weights(dat_path)
    cached = cached_weights_path(dat_path)
    assert cached.parent == private_cache and cached.is_file()
    assert dat_path.name not in cached.name and "dlib_resnet_v1-" in cached.name

    def parse_again(*args, **kwargs):
        raise AssertionError("the .dat was parsed again although a valid cache exists")

    monkeypatch.setattr(dlib_resnet, "read_dnn", parse_again)
    second = load_dlib_weights(dat_path)
    assert second.keys() == first.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    # The cache loads with torch's safe loader: plain tensors only.
    assert torch.load(cached, weights_only=True).keys() == first.keys()


def test_corrupted_cache_is_detected_and_rebuilt(private_cache, dat_path):
    reference = load_dlib_weights(dat_path)
    cached = cached_weights_path(dat_path)
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep inside a tensor
    cached.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="unusable"):
        rebuilt = load_dlib_weights(dat_path)
    assert all(torch.equal(reference[key], rebuilt[key]) for key in reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache verifies again
        load_dlib_weights(dat_path)


# ----------------------------------------------------------------------------------------------
# The network


def test_registry_builds_the_architecture_without_weights():
    net = create_model("dlib_resnet_v1", pretrained=False)
    assert isinstance(net, dlib_resnet.DlibResNet)
    assert net(_inputs(1)).shape == (1, 128)


def test_normalize_rgb_matches_dlib_input_layer():
    images = torch.tensor(RGB_MEAN).view(1, 3, 1, 1).repeat(2, 1, 4, 4)
    images[1] = 255.0
    out = normalize_rgb(images)
    assert torch.allclose(out[0], torch.zeros_like(out[0]), atol=1e-6)
    expected = (255.0 - torch.tensor(RGB_MEAN)) * RGB_SCALE
    assert torch.allclose(out[1, :, 0, 0], expected)
    with pytest.raises(InvalidInputError):
        normalize_rgb(torch.zeros(2, 150, 150, 3))


def test_forward_features_shapes_and_stage_selection(model):
    with torch.no_grad():
        features = model.forward_features(_inputs(2))
        assert list(features) == list(STAGES)
        shapes = {name: tuple(f.shape[1:]) for name, f in features.items()}
        assert shapes == {
            "stem": (32, 35, 35),
            "stage1": (32, 35, 35),
            "stage2": (64, 17, 17),
            "stage3": (128, 8, 8),
            "stage4": (256, 4, 4),
            "stage5": (256, 2, 2),
        }
        subset = model.forward_features(_inputs(2), stages=("stage2",))
        assert list(subset) == ["stage2"] and torch.equal(subset["stage2"], features["stage2"])
    with pytest.raises(InvalidInputError):
        model.forward_features(_inputs(1), stages=("conv5",))


def test_batch_equals_singles(model):
    x = _inputs(4, seed=1)
    with torch.no_grad():
        batched = model(x)
        singles = torch.cat([model(x[i : i + 1]) for i in range(len(x))])
    assert torch.allclose(batched, singles, atol=1e-5)


def test_gradient_flows_to_the_input(model):
    x = _inputs(2, seed=2).requires_grad_(True)
    target = torch.randn(2, 128, generator=torch.Generator().manual_seed(3))
    loss = (model(x) - target).pow(2).sum() + model.forward_features(x, ("stage2",))["stage2"].mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_onnx_export_with_dynamic_batch_matches_onnxruntime(model):
    ort = pytest.importorskip("onnxruntime")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes that spatial padding sizes are constants
        torch.onnx.export(
            model,
            (_inputs(2),),
            buffer,
            input_names=["image"],
            output_names=["embedding"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = _inputs(batch, seed=4 + batch)
        (onnx_out,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            torch_out = model(x).numpy()
        assert onnx_out.shape == (batch, 128)
        np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------------------------
# Parity with dlib itself on real faces


@pytest.fixture(scope="module")
def lfw_chips(lfw_dir):
    """dlib's own pipeline: HOG detector, 5-point shape predictor, 150 px chips with padding 0.25."""
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(_model_file("shape_predictor_5_face_landmarks.dat")))
    chips = []
    for path in sorted((lfw_dir / "images").glob("*/*_0001.jpg")):
        image = dlib.load_rgb_image(str(path))
        faces = detector(image, 1)
        if faces:
            shape = predictor(image, faces[0])
            chips.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        if len(chips) == PARITY_FACES:
            break
    if len(chips) < 20:
        pytest.skip(f"only {len(chips)} LFW faces found; the parity test needs 20")
    return np.stack(chips)


def test_descriptors_match_dlib_on_lfw_faces(model, lfw_chips, dat_path):
    dlib = pytest.importorskip("dlib")
    recognizer = dlib.face_recognition_model_v1(str(dat_path))
    reference = np.array([np.array(recognizer.compute_face_descriptor(chip)) for chip in lfw_chips])
    with torch.no_grad():
        ours = model(normalize_rgb(torch.from_numpy(lfw_chips).permute(0, 3, 1, 2).float())).numpy()
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    distance = np.linalg.norm(ours - reference, axis=1)
    assert cosine.min() >= 0.9999, f"cosine to dlib: min {cosine.min():.6f}"
    assert distance.max() < 1e-3, f"L2 distance to dlib: max {distance.max():.2e}"  # dlib's threshold: 0.6
    # Not re-normalised: same norms as dlib's descriptors.
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-4)
