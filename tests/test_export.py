"""ONNX export of every real fhsdk network, checked against PyTorch through ONNX Runtime.

Each file is exported once with dynamic axes and must run batch 1 and batch 7 (and, for the
fully convolutional nets, two image sizes) with outputs matching PyTorch FP32.
"""

import numpy as np
import onnx
import pytest
import torch

from fhsdk.errors import InvalidInputError
from fhsdk.runtime import create_backend, export_onnx, export_preset, get_preset, read_metadata
from fhsdk.runtime.export import DEFAULT_OPSET, state_dict_sha256

DETECTOR = ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "retinaface"]
GENERATORS = ["edsr", "rrdb", "sicnn", "srgan", "dsnet"]

# Small generator configurations keep the test quick; the architecture code is the real one.
SMALL = {
    "edsr": dict(num_blocks=2),
    "rrdb": dict(num_blocks=1),
    "srgan": dict(num_blocks=2),
    "dsnet": dict(num_blocks=1, layers_per_block=4),
    "sicnn": dict(layers_per_block=2),
}


def _build(name):
    if name in SMALL:
        from fhsdk.models import create_model

        return create_model(name, **SMALL[name]).eval()
    try:
        return get_preset(name).build()
    except Exception as error:  # weights come from installed packages
        pytest.skip(f"{name} cannot be built here: {error}")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", ["dlib_resnet_v1"] + DETECTOR + GENERATORS)
def test_export_matches_pytorch_at_two_batch_sizes(name, tmp_path):
    model = _build(name)
    preset = get_preset(name)
    report = export_preset(name, tmp_path / f"{name}.onnx", model=model, check_batches=(1, 7))
    assert report.passed, report.summary()
    assert [c.name for c in report.parity] == preset.io.output_names
    for comparison in report.parity:
        assert comparison.cosine_min >= 0.99999 and comparison.max_abs < 1e-3

    # the file itself: provenance, opset, and dynamic axes exactly where the preset says
    metadata = read_metadata(report.path)
    assert metadata["fhsdk.model_name"] == name
    assert metadata["fhsdk.weights_sha256"] == state_dict_sha256(model) == report.weights_sha256
    proto = onnx.load(str(report.path))
    assert {op.domain: op.version for op in proto.opset_import}[""] == DEFAULT_OPSET
    backend = create_backend("onnxruntime", report.path)
    assert backend.io.input_names == preset.io.input_names
    assert [s.shape for s in backend.inputs] == [s.shape for s in preset.io.inputs]
    assert [s.name for s in backend.outputs] == preset.io.output_names

    out = backend.run(preset.io.example_inputs(batch=7))
    for spec in preset.io.outputs:
        assert out[spec.name].shape[0] == 7


def _check_pnet_serves_several_image_sizes(model, tmp_path):
    path = tmp_path / "pnet.onnx"
    report = export_preset("mtcnn_pnet", path, model=model, check_batches=(1, 3), check_spatial=[(48, 64), (97, 131)])
    assert report.passed, report.summary()
    backend = create_backend("onnxruntime", path)
    for h, w in [(12, 12), (48, 64), (97, 131)]:
        image = np.random.default_rng(h).random((2, 3, h, w)).astype(np.float32)
        out = backend.run({"image": image})
        with torch.no_grad():
            prob, reg = model(torch.from_numpy(image))
        assert out["prob"].shape == tuple(prob.shape) and out["bbox_reg"].shape == tuple(reg.shape)
        np.testing.assert_allclose(out["prob"], prob.numpy(), atol=1e-5)
        np.testing.assert_allclose(out["bbox_reg"], reg.numpy(), atol=1e-4)


def test_pnet_one_file_serves_several_image_sizes(tmp_path):
    """P-Net's pools must not freeze the traced size: one file serves every image size."""
    _check_pnet_serves_several_image_sizes(_build("mtcnn_pnet"), tmp_path)


def test_generator_output_is_upscaled_by_its_scale(tmp_path):
    from fhsdk.models import create_model

    model = create_model("edsr", num_blocks=1, scale=4).eval()
    report = export_preset("edsr", tmp_path / "edsr.onnx", model=model, check_spatial=[(8, 8), (12, 14)])
    assert report.passed
    out = create_backend("onnxruntime", report.path).run({"image": np.zeros((2, 3, 12, 14), np.float32)})
    assert out["sr"].shape == (2, 3, 48, 56)


def test_export_onnx_refuses_old_opsets_and_records_names(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    x = torch.rand(1, 3, 10, 10)
    with pytest.raises(InvalidInputError, match="opset"):
        export_onnx(model, x, tmp_path / "m.onnx", ["x"], ["y"], opset=13)
    report = export_onnx(
        model, x, tmp_path / "m.onnx", ["x"], ["y"], {"x": {0: "n"}, "y": {0: "n"}}, model_name="tiny", opset=18
    )
    assert report.passed and report.opset == 18
    assert read_metadata(report.path)["fhsdk.model_name"] == "tiny"


def test_export_parity_catches_a_graph_frozen_at_the_traced_size(tmp_path):
    """A module whose forward computes sizes in Python exports with those sizes baked in; the
    parity check at a second size must catch it instead of shipping a wrong file."""

    class BakesShape(torch.nn.Module):
        def forward(self, x):
            return x.reshape(int(x.shape[0]), -1).sum(dim=1) * float(x.shape[2])

    example = torch.rand(1, 3, 8, 8)
    feeds = [
        {"x": np.random.rand(2, 3, 8, 8).astype(np.float32)},
        {"x": np.random.rand(2, 3, 16, 8).astype(np.float32)},
    ]
    report = export_onnx(
        BakesShape(),
        example,
        tmp_path / "b.onnx",
        ["x"],
        ["y"],
        {"x": {0: "n", 2: "h"}, "y": {0: "n"}},
        check_inputs=feeds,
    )
    assert not report.passed


def test_state_dict_hash_tracks_weights():
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert state_dict_sha256(a) == state_dict_sha256(b)
    with torch.no_grad():
        b.bias[0] += 1e-6
    assert state_dict_sha256(a) != state_dict_sha256(b)


def test_backends_from_a_preset_name_agree(tmp_path, monkeypatch):
    from fhsdk.runtime import verify_backend

    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    _build("mtcnn_onet")  # skips if the weights package is missing
    onnx_backend = create_backend("onnxruntime", "mtcnn_onet")
    torch_backend = create_backend("torch", "mtcnn_onet")
    assert onnx_backend.path.parent == tmp_path / "onnx"  # exported once into the cache
    assert [s.name for s in onnx_backend.outputs] == [s.name for s in torch_backend.outputs]
    result = verify_backend(onnx_backend, torch_backend, get_preset("mtcnn_onet").io.example_inputs(batch=5))
    assert result.passed, result.table()
    # a second backend reuses the cached file instead of exporting again
    before = onnx_backend.path.stat().st_mtime_ns
    assert create_backend("onnxruntime", "mtcnn_onet").path.stat().st_mtime_ns == before


def test_retinaface_exports_for_every_padded_size_and_its_profile_covers_tiny_mode_1080p(tmp_path):
    from fhsdk.detect.retinaface import padded_side
    from fhsdk.runtime.build import default_profile

    report = export_preset(
        "retinaface",
        tmp_path / "retinaface.onnx",
        model=_build("retinaface"),
        check_batches=(1, 3),
        check_spatial=[(64, 96), (160, 128), (70, 45)],
    )
    assert report.passed, report.summary()
    profile = default_profile(report.path, "retinaface")
    low, _, high = profile.range("image")
    # the tiny-face pass of a 1080p frame at the Pipeline's default min face (20 px: x2.4)
    assert low == (1, 3, 32, 32) and high[2:] == (padded_side(1080 * 2.4), padded_side(1920 * 2.4))
    profile.check({"image": (4, 3, padded_side(1080), padded_side(1920))})  # four 1080p frames in one batch
    with pytest.raises(InvalidInputError):
        profile.check({"image": (5, 3, 64, 64)})


def test_retinaface_on_onnx_runtime_finds_the_same_faces(tmp_path, monkeypatch):
    import skimage.data

    from fhsdk.detect import RetinaFace

    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    image = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    frames = [image, np.ascontiguousarray(image[::2, ::2])]
    ours = RetinaFace().detect(frames)
    theirs = RetinaFace().use_backend("onnxruntime").detect(frames)
    for a, b in zip(ours, theirs):
        assert len(a) == len(b) >= 1
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.02)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.02)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_packaged_hallucinators_export_by_name_and_random_weights_never_pass(tmp_path, capsys):
    """`fhsdk export default` was refused, `--weights hallucinator_default.pt` failed on every preset
    (48 features, the preset 64), and without weights it exported random ones and printed PASS."""
    from fhsdk.cli import main
    from fhsdk.hallucinate import PACKAGED, create_hallucinator

    assert main(["export", "default", "-o", str(tmp_path / "default.onnx")]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "RANDOM" not in out
    packaged = create_hallucinator("default")
    assert read_metadata(tmp_path / "default.onnx")["fhsdk.weights_sha256"] == state_dict_sha256(packaged.generator)
    assert main(["export", "edsr", "--weights", str(PACKAGED["default"]), "-o", str(tmp_path / "edsr.onnx")]) == 0
    assert "PASS" in capsys.readouterr().out

    assert main(["export", "edsr", "-o", str(tmp_path / "random.onnx")]) == 2
    assert "without trained weights" in capsys.readouterr().err
    assert main(["export", "sicnn", "--random-weights", "-o", str(tmp_path / "random.onnx")]) == 0
    out = capsys.readouterr().out
    assert "RANDOM weights" in out and "PASS" not in out
