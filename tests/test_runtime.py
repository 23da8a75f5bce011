"""Backend interface behaviour on a small real conv net: names, shapes, errors, auto, verify."""

import argparse
import json
import logging

import numpy as np
import pytest
import torch
from torch import nn

from fhsdk.cli import build_engine as build_engine_command
from fhsdk.cli import export as export_command
from fhsdk.cli import verify as verify_command
from fhsdk.errors import BackendUnavailableError, ConfigError, InvalidInputError, WeightsError
from fhsdk.runtime import ModelIO, TensorSpec, create_backend, get_preset, verify_backend
from fhsdk.runtime.export import read_metadata
from fhsdk.runtime.factory import CPU_ORDER, auto_candidates, default_precision
from fhsdk.runtime.fp16_onnx import graph_precision
from fhsdk.runtime.onnxruntime_backend import OnnxRuntimeBackend
from fhsdk.runtime.verify import row_cosines

HAS_CUDA = torch.cuda.is_available()


class TinyNet(nn.Module):
    """Two outputs: per-sample logits and a feature map, so names and ranks are both exercised."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        features = torch.relu(self.conv(x))
        return self.head(features.mean(dim=(2, 3))), features


TINY_IO = ModelIO(
    inputs=(TensorSpec("image", "float32", (-1, 3, 16, 16)),),
    outputs=(TensorSpec("logits", "float32", (-1, 4)), TensorSpec("features", "float32", (-1, 8, 16, 16))),
    example_shapes={"image": (1, 3, 16, 16)},
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny():
    return TinyNet()


@pytest.fixture(params=["torch", "onnxruntime"])
def backend(request, tiny, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path_factory.mktemp("cache")))
    return create_backend(request.param, tiny, io=TINY_IO)


def test_backend_reports_names_dtypes_and_dynamic_shapes(backend):
    assert backend.name in ("torch", "onnxruntime")
    assert backend.device == "cpu" and backend.precision == "fp32"
    assert [(s.name, s.dtype, s.shape) for s in backend.inputs] == [("image", "float32", (-1, 3, 16, 16))]
    assert [s.name for s in backend.outputs] == ["logits", "features"]
    assert backend.outputs[0].shape == (-1, 4)
    assert backend.outputs[1].shape == (-1, 8, 16, 16)


@pytest.mark.parametrize("batch", [1, 5])
def test_backend_matches_the_module(backend, tiny, batch):
    feeds = TINY_IO.example_inputs(batch=batch, seed=batch)
    outputs = backend.run(feeds)
    with torch.no_grad():
        logits, features = tiny(torch.from_numpy(feeds["image"]))
    assert set(outputs) == {"logits", "features"}
    assert isinstance(outputs["logits"], np.ndarray) and outputs["logits"].dtype == np.float32
    assert outputs["logits"].shape == (batch, 4) and outputs["features"].shape == (batch, 8, 16, 16)
    np.testing.assert_allclose(outputs["logits"], logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(outputs["features"], features.numpy(), atol=1e-5)


def test_backend_accepts_torch_tensors(backend):
    feeds = TINY_IO.example_inputs(batch=2)
    from_numpy = backend(feeds)
    from_torch = backend({"image": torch.from_numpy(feeds["image"])})
    np.testing.assert_array_equal(from_numpy["logits"], from_torch["logits"])


@pytest.mark.parametrize(
    "feeds,match",
    [
        ({}, "missing \\['image'\\]"),
        ({"image": np.zeros((1, 3, 16, 16), np.float32), "extra": np.zeros(1, np.float32)}, "unexpected \\['extra'\\]"),
        ({"img": np.zeros((1, 3, 16, 16), np.float32)}, "inputs must be named \\['image'\\]"),
        ({"image": np.zeros((1, 3, 16, 16), np.float64)}, "dtype float32, got float64"),
        ({"image": torch.zeros((1, 3, 16, 16), dtype=torch.float16)}, "dtype float32, got float16"),
        ({"image": np.zeros((1, 3, 16, 17), np.float32)}, "shape \\(\\?, 3, 16, 16\\), got \\(1, 3, 16, 17\\)"),
        ({"image": np.zeros((3, 16, 16), np.float32)}, "got \\(3, 16, 16\\)"),
        ({"image": np.zeros((0, 3, 16, 16), np.float32)}, "got \\(0, 3, 16, 16\\)"),
        ({"image": [[1.0]]}, "NumPy array or torch tensor"),
    ],
)
def test_backend_refuses_bad_inputs(backend, feeds, match):
    with pytest.raises(InvalidInputError, match=match):
        backend.run(feeds)


def test_module_returning_a_dict_is_mapped_by_key():
    class DictNet(TinyNet):
        def forward(self, x):
            logits, features = super().forward(x)
            return {"features": features, "logits": logits}

    backend = create_backend("torch", DictNet(), io=TINY_IO)
    out = backend.run(TINY_IO.example_inputs(batch=3))
    assert list(out) == ["logits", "features"] and out["logits"].shape == (3, 4)


def test_module_with_other_output_count_is_an_error(tiny):
    io = ModelIO(TINY_IO.inputs, TINY_IO.outputs[:1], TINY_IO.example_shapes)
    backend = create_backend("torch", tiny, io=io)
    with pytest.raises(InvalidInputError, match="returned 2 outputs"):
        backend.run(io.example_inputs())


# -- unavailable kinds, devices and precisions ---------------------------------------------------------


def test_fp16_on_cpu_is_refused_not_silently_fp32(tiny):
    with pytest.raises(BackendUnavailableError, match="FP16 on CUDA only"):
        create_backend("torch", tiny, io=TINY_IO, precision="fp16")


def test_default_precision_is_fp16_on_cuda_fp32_on_cpu(tiny):
    assert default_precision("cuda") == default_precision("cuda:1") == "fp16"
    assert default_precision("cpu") == "fp32"
    assert create_backend("onnxruntime", tiny, io=TINY_IO).precision == "fp32"


def test_onnxruntime_fp16_runs_the_mixed_precision_graph_within_parity(tiny):
    fp16 = create_backend("onnxruntime", tiny, io=TINY_IO, precision="fp16")
    assert fp16.precision == "fp16" and graph_precision(fp16.path) == "fp16"
    assert [s.dtype for s in fp16.inputs + fp16.outputs] == ["float32"] * 3  # the interface is unchanged
    metadata = read_metadata(fp16.path)
    assert "ReduceMean" in metadata["fhsdk.fp32_ops"].split(",")  # the mean pool stays FP32
    reference = create_backend("torch", tiny, io=TINY_IO)
    result = verify_backend(fp16, reference, TINY_IO.example_inputs(batch=3, seed=5))
    assert result.passed, result.table()
    fp32_error = (
        verify_backend(
            create_backend("onnxruntime", tiny, io=TINY_IO), reference, TINY_IO.example_inputs(batch=3, seed=5)
        )
        .outputs[0]
        .max_abs
    )
    assert result.outputs[0].max_abs > fp32_error  # it really computed in float16
    # the graph is refused under the wrong precision rather than relabelled
    with pytest.raises(InvalidInputError, match="FP16 graph"):
        OnnxRuntimeBackend(fp16.path)


@pytest.mark.parametrize("kind", ["torch", "onnxruntime"])
def test_batches_over_max_batch_are_split_not_refused(tiny, kind):
    limited = create_backend(kind, tiny, io=TINY_IO, max_batch=3)
    whole = create_backend(kind, tiny, io=TINY_IO)
    feeds = TINY_IO.example_inputs(batch=8, seed=2)
    calls = []
    run_chunk = limited._run
    limited._run = lambda chunk: calls.append(len(chunk["image"])) or run_chunk(chunk)
    out, expected = limited.run(feeds), whole.run(feeds)
    assert calls == [3, 3, 2]
    for name in expected:
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidInputError, match="max_batch"):
        create_backend(kind, tiny, io=TINY_IO, max_batch=0)


def test_unknown_precision_kind_and_sources_are_config_errors(tiny, tmp_path):
    with pytest.raises(InvalidInputError, match="precision"):
        create_backend("torch", tiny, io=TINY_IO, precision="int8")
    with pytest.raises(ConfigError, match="unknown backend 'openvino'"):
        create_backend("openvino", tiny, io=TINY_IO)
    with pytest.raises(ConfigError, match="neither an existing"):
        create_backend("onnxruntime", str(tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError, match="needs the IO names"):
        create_backend("torch", tiny)
    with pytest.raises(ConfigError, match="model_name= \\(a preset\\) or io="):
        create_backend("onnxruntime", tiny)


def test_torch_backend_cannot_run_an_onnx_file(tiny):
    path = create_backend("onnxruntime", tiny, io=TINY_IO).path
    assert path.is_file() and path.suffix == ".onnx"
    with pytest.raises(ConfigError, match="runs nn.Modules"):
        create_backend("torch", path)


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised where there is no GPU")
def test_cuda_device_without_gpu_says_what_to_do(tiny):
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU.*device='cpu'"):
        create_backend("torch", tiny, io=TINY_IO, device="cuda")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider|onnxruntime-gpu"):
        create_backend("onnxruntime", tiny, io=TINY_IO, device="cuda")


def test_tensorrt_unavailable_here_names_the_fix(tiny):
    try:
        import tensorrt  # noqa: F401

        if HAS_CUDA:
            pytest.skip("TensorRT and a GPU are present")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailableError, match="pip install tensorrt|no CUDA GPU|PyTorch sees none"):
        create_backend("tensorrt", tiny, io=TINY_IO)


def test_onnxruntime_session_options(tiny):
    backend = create_backend("onnxruntime", tiny, io=TINY_IO, intra_op_threads=1, graph_optimization_level="basic")
    assert backend.providers == ["CPUExecutionProvider"]
    assert backend.session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(InvalidInputError, match="graph_optimization_level"):
        create_backend("onnxruntime", tiny, io=TINY_IO, graph_optimization_level="max")


# -- auto ----------------------------------------------------------------------------------------------------


def test_auto_picks_the_best_available_here_and_logs_why(tiny, caplog):
    expected = next((k, d) for k, d, reason in auto_candidates() if reason is None)
    with caplog.at_level(logging.INFO, logger="fhsdk.runtime.factory"):
        backend = create_backend("auto", tiny, io=TINY_IO)
    assert (backend.name, backend.device.split(":")[0]) == expected
    message = " ".join(r.getMessage() for r in caplog.records)
    assert f"chose {expected[0]} on {expected[1]}" in message
    if not HAS_CUDA:
        # on this CPU machine every GPU option is skipped with its reason, and the CPU order is ours
        assert expected == (CPU_ORDER[0], "cpu")
        assert "not torch/cuda" in message and "not tensorrt/cuda" in message


def test_auto_with_an_onnx_file_never_picks_torch(tiny):
    path = create_backend("onnxruntime", tiny, io=TINY_IO).path
    backend = create_backend("auto", path, device="cpu")
    assert backend.name == "onnxruntime"


def test_auto_on_cpu_with_a_module_and_no_io_names_picks_torch_only_if_it_can(tiny):
    # Without IO names nothing can export or name outputs: a clear error rather than a guess.
    with pytest.raises(ConfigError):
        create_backend("auto", tiny, device="cpu")


# -- verify -----------------------------------------------------------------------------------------------------


def test_verify_passes_for_an_exact_backend_and_reports_each_output(tiny):
    reference = create_backend("torch", tiny, io=TINY_IO)
    candidate = create_backend("onnxruntime", tiny, io=TINY_IO)
    feeds = [TINY_IO.example_inputs(batch=1), TINY_IO.example_inputs(batch=7, seed=3)]
    result = verify_backend(candidate, reference, feeds)
    assert result.passed and result.status == "PASS"
    assert [o.name for o in result.outputs] == ["logits", "features"]
    for o in result.outputs:
        assert o.max_abs < 1e-4 and o.mean_abs <= o.max_abs and o.cosine_min > 0.99999
    assert "| logits |" in result.table()
    assert result.to_dict()["status"] == "PASS"


def test_verify_fails_a_backend_with_other_weights(tiny):
    reference = create_backend("torch", tiny, io=TINY_IO)
    other = TinyNet()
    with torch.no_grad():  # a small real perturbation, like an FP16 engine gone wrong
        other.head.weight.add_(0.2 * torch.randn_like(other.head.weight))
    candidate = create_backend("torch", other, io=TINY_IO)
    result = verify_backend(candidate, reference, TINY_IO.example_inputs(batch=8))
    by_name = {o.name: o for o in result.outputs}
    assert not result.passed and result.status == "FAIL"
    assert not by_name["logits"].passed and by_name["features"].passed


def test_verify_thresholds(tiny):
    reference = create_backend("torch", tiny, io=TINY_IO)
    candidate = create_backend("onnxruntime", tiny, io=TINY_IO)
    feeds = TINY_IO.example_inputs(batch=2)
    result = verify_backend(reference, reference, feeds, max_abs={"logits": 0.0})
    assert result.passed  # identical outputs meet even a zero bound
    assert {o.min_cosine for o in result.outputs} == {0.99999}  # the FP32 default
    # ONNX Runtime sums in another order: tiny but nonzero differences fail a zero bound
    strict = verify_backend(candidate, reference, feeds, max_abs=0.0)
    assert not strict.passed and all(o.max_abs > 0 for o in strict.outputs if not o.passed)
    impossible = verify_backend(candidate, reference, feeds, min_cosine={"logits": 1.1, "features": 0.0})
    assert [o.passed for o in impossible.outputs] == [False, True]


def test_row_cosines():
    a = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(row_cosines(a, b), [1.0, 1.0, 0.0, -1.0])
    # 1-D outputs (one value per sample) are compared as one vector
    assert row_cosines(np.array([1.0, 2.0]), np.array([2.0, 4.0])).shape == (1,)


# -- CUDA paths (GPU machines only) -------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_torch_cuda_fp16_and_cuda_graph(tiny):
    reference = create_backend("torch", tiny, io=TINY_IO)
    fp16 = create_backend("torch", TinyNet(), io=TINY_IO, device="cuda")  # FP16 is the CUDA default
    assert fp16.precision == "fp16"
    assert verify_backend(fp16, reference, TINY_IO.example_inputs(batch=4)).passed
    graphed = create_backend("torch", TinyNet(), io=TINY_IO, device="cuda", precision="fp32", cuda_graph_batch=4)
    for batch in (4, 3):  # captured batch replays the graph; another batch runs eagerly
        out = graphed.run(TINY_IO.example_inputs(batch=batch, seed=batch))
        assert out["logits"].is_cuda and out["logits"].shape == (batch, 4)
        assert verify_backend(graphed, reference, TINY_IO.example_inputs(batch=batch, seed=batch)).passed


# -- CLI entry points ------------------------------------------------------------------------------------------


def test_cli_export_then_verify(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    export_command.add_arguments(parser)
    onnx_path = tmp_path / "sicnn.onnx"
    weights = tmp_path / "sicnn.pt"
    torch.save(get_preset("sicnn").build().state_dict(), weights)
    args = parser.parse_args(
        ["sicnn", "-o", str(onnx_path), "--weights", str(weights), "--json", str(tmp_path / "export.json")]
    )
    assert export_command.run(args) == 0
    assert "PASS" in capsys.readouterr().out
    assert json.loads((tmp_path / "export.json").read_text())["passed"] is True

    parser = argparse.ArgumentParser()
    verify_command.add_arguments(parser)
    report = tmp_path / "verify.json"
    assert (
        verify_command.run(
            parser.parse_args([str(onnx_path), "--weights", str(weights), "--batch", "2", "--json", str(report)])
        )
        == 0
    )
    assert "PASS" in capsys.readouterr().out and json.loads(report.read_text())["status"] == "PASS"
    # Without the weights the reference would be a fresh random generator: refused, not compared.
    with pytest.raises(WeightsError, match="--weights"):
        verify_command.run(parser.parse_args([str(onnx_path), "--batch", "2"]))


def test_cli_build_engine_without_tensorrt(tmp_path, tiny):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed")
    except ImportError:
        pass
    parser = argparse.ArgumentParser()
    build_engine_command.add_arguments(parser)
    onnx_path = create_backend("onnxruntime", tiny, io=TINY_IO).path
    args = parser.parse_args(
        [
            str(onnx_path),
            "--min-shapes",
            "image:1x3x16x16",
            "--opt-shapes",
            "image:4x3x16x16",
            "--max-shapes",
            "image:8x3x16x16",
        ]
    )
    with pytest.raises(BackendUnavailableError, match="pip install tensorrt"):
        build_engine_command.run(args)


def test_onnxruntime_backend_reads_specs_from_the_file(tiny):
    backend = create_backend("onnxruntime", tiny, io=TINY_IO)
    again = OnnxRuntimeBackend(backend.path)
    assert again.inputs == backend.inputs and again.outputs == backend.outputs


# -- FLOP counter --------------------------------------------------------------------------------------------


def test_count_flops_conv_linear_and_deconv_by_hand():
    from fhsdk.runtime.flops import count_flops

    result = count_flops(TinyNet(), torch.zeros(1, 3, 16, 16))
    # conv: 8*16*16 outputs x 3*3*3 MACs; head: 4 outputs x 8 MACs; 2 FLOPs per MAC
    assert result["per_layer"] == {"conv": 2 * 8 * 16 * 16 * 27, "head": 2 * 4 * 8}
    batch = count_flops(TinyNet(), torch.zeros(5, 3, 16, 16))
    assert batch["flops"] == 5 * result["flops"]
    deconv = torch.nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
    grouped = torch.nn.Conv2d(4, 8, 3, groups=2)
    assert count_flops(deconv, torch.zeros(1, 4, 5, 5))["flops"] == 2 * 100 * 2 * 16
    assert count_flops(grouped, torch.zeros(1, 4, 5, 5))["flops"] == 2 * (8 * 3 * 3) * 2 * 9


def test_verify_on_real_aligned_faces(tmp_path, lfw_dir):
    """`fhsdk verify --faces`: the exported recogniser against PyTorch on real aligned LFW chips."""
    import argparse

    from fhsdk.runtime.export import export_preset

    onnx_path = tmp_path / "recognizer.onnx"
    export_preset("dlib_resnet_v1", str(onnx_path), check_batches=(1,))
    faces = [str(lfw_dir / "images" / "Aaron_Peirsol")]
    from fhsdk.runtime.presets import get_preset

    chips = verify_command.face_inputs(faces, "dlib_resnet_v1", get_preset("dlib_resnet_v1"))
    assert chips.shape == (4, 3, 150, 150) and abs(float(chips.mean())) < 0.5
    parser = argparse.ArgumentParser()
    verify_command.add_arguments(parser)
    assert verify_command.run(parser.parse_args([str(onnx_path), "--faces", *faces])) == 0
