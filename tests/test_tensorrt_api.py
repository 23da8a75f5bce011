"""fhsdk's TensorRT 10.x and 11.x code paths against each version's documented Python API.

TensorRT cannot be installed here (no GPU), so these tests drive `build.py` and the backend's IO
binding through `_FakeTensorRT`, a stand-in written from NVIDIA's documentation of the two APIs:
- both: Builder / OnnxParser / IBuilderConfig.set_memory_pool_limit / optimisation profiles,
  add_optimization_profile returning the profile index, IExecutionContext.set_input_shape and
  set_tensor_address returning bool, execute_async_v3(stream handle) returning bool;
- 10.x: NetworkDefinitionCreationFlag.STRONGLY_TYPED opts in to strong typing; BuilderFlag.FP16,
  OBEY_PRECISION_CONSTRAINTS and Builder.platform_has_fast_fp16 still exist (fhsdk must not need them);
- 11.x: BuilderFlag.FP16, OBEY_PRECISION_CONSTRAINTS and platform_has_fast_fp16 are removed
  (touching them raises AttributeError), every network is strongly typed.
The stand-in checks API shape only; it computes nothing and is never used outside these tests.
What it cannot show (kernels, timings, FP16 accuracy of real engines) needs a GPU: docs/RUNTIME.md.
"""

import contextlib
import enum
import json
import sys
import types

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from fhsdk.errors import BackendUnavailableError, InvalidInputError, WeightsError
from fhsdk.runtime import build as build_module
from fhsdk.runtime import tensorrt_backend
from fhsdk.runtime.engine_cache import read_engine, read_header
from fhsdk.runtime.export import export_onnx
from fhsdk.runtime.fp16_onnx import graph_precision
from fhsdk.runtime.trt_plan import IOPlan, OptimizationProfile


class _Strict:
    """Attribute access fails like the real module does for names a version removed."""

    def __init__(self, **names):
        self.__dict__.update(names)


def _fake_tensorrt(version: str, strongly_typed_flag: bool = True):
    major = int(version.split(".")[0])
    log = {"network_flags": [], "builder_flags": [], "profiles": [], "pool": None, "streams": []}

    class DataType(enum.Enum):
        FLOAT = 0
        HALF = 1

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    flags = {"STRONGLY_TYPED": 1} if strongly_typed_flag else {}
    builder_flags = {"TF32": 6, "STRICT_TYPES": 99}
    if major == 10:
        builder_flags.update(FP16=0, OBEY_PRECISION_CONSTRAINTS=12)

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    class Network:
        def __init__(self):
            self.inputs = []

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, index):
            return self.inputs[index]

    class Parser:
        def __init__(self, network, logger):
            self.network = network
            self.num_errors = 0

        def parse(self, data):
            try:
                proto = onnx.load_from_string(data)
            except Exception:  # noqa: BLE001 - any unreadable bytes are a parse failure
                self.num_errors = 1
                return False
            for value in proto.graph.input:
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)
                self.network.inputs.append(Tensor(value.name, dims))
            self.network.fp16 = graph_precision_of(proto)
            self.network.outputs = [o.name for o in proto.graph.output]
            return True

        def get_error(self, index):
            return "not an ONNX graph"

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class Config:
        def set_memory_pool_limit(self, pool, size):
            log["pool"] = (pool, size)

        def set_flag(self, flag):
            log["builder_flags"].append(flag)

        def add_optimization_profile(self, profile):
            log["profiles"].append(profile.shapes)
            return len(log["profiles"]) - 1

    class Builder:
        def __init__(self, logger):
            if major == 10:
                self.platform_has_fast_fp16 = True

        def create_network(self, flags=0):
            log["network_flags"].append(flags)
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            strongly_typed = major >= 11 or bool(log["network_flags"][-1] & (1 << flags.get("STRONGLY_TYPED", 99)))
            plan = {
                "inputs": [(t.name, t.shape) for t in network.inputs],
                "outputs": network.outputs,
                "strongly_typed": strongly_typed,
                "fp16": network.fp16,
            }
            return json.dumps(plan).encode()

    class Context:
        def __init__(self, profile):
            self.profile, self.shapes, self.addresses = profile, {}, {}

        def set_input_shape(self, name, shape):
            low, _, high = self.profile[name]
            if len(shape) != len(low) or any(not a <= s <= c for a, s, c in zip(low, shape, high)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            batch = next(iter(self.shapes.values()))[0] if self.shapes else -1
            return (batch, 4)

        def set_tensor_address(self, name, pointer):
            self.addresses[name] = pointer
            return pointer != 0

        def execute_async_v3(self, stream_handle):
            log["streams"].append(stream_handle)
            return True

    def graph_precision_of(proto):
        return any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer)

    module = types.ModuleType("tensorrt")
    module.__version__ = version
    module.Logger = type("Logger", (), {"WARNING": 2, "ERROR": 1, "__init__": lambda self, level=2: None})
    module.Builder = Builder
    module.OnnxParser = Parser
    module.NetworkDefinitionCreationFlag = _Strict(**flags)
    module.BuilderFlag = _Strict(**builder_flags)
    module.MemoryPoolType = _Strict(WORKSPACE=0)
    module.DataType, module.TensorIOMode = DataType, TensorIOMode
    module.float32, module.float16 = DataType.FLOAT, DataType.HALF
    module.Context = Context
    module.log = log
    return module


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


@pytest.fixture
def onnx_file(tmp_path):
    report = export_onnx(
        _Net(),
        torch.rand(1, 3, 8, 8),
        tmp_path / "net.onnx",
        ["image"],
        ["score"],
        {"image": {0: "batch"}, "score": {0: "batch"}},
        model_name="net",
    )
    assert report.passed
    return report.path


@pytest.fixture
def no_gpu_needed(monkeypatch, tmp_path):
    """Stand in for the CUDA device facts the builder records (this machine has no GPU)."""
    monkeypatch.setattr(build_module, "cuda_device_identity", lambda index=0: ("Test GPU", (9, 0)))
    monkeypatch.setattr(torch.cuda, "device", lambda index: contextlib.nullcontext())
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path / "cache"))


def _install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module


SHAPES = ({"image": (1, 3, 8, 8)}, {"image": (4, 3, 8, 8)}, {"image": (16, 3, 8, 8)})


@pytest.mark.parametrize("version,major", [("10.13.3", 10), ("11.3.0", 11)])
def test_import_tensorrt_reports_the_major_version(monkeypatch, caplog, version, major):
    _install(monkeypatch, _fake_tensorrt(version))
    with caplog.at_level("INFO", logger="fhsdk.runtime.build"):
        trt = build_module.import_tensorrt()
    assert build_module.tensorrt_major(trt) == major
    assert f"TensorRT {version} (major {major}" in caplog.text


def test_import_tensorrt_refuses_9x_and_warns_on_12x(monkeypatch, caplog):
    _install(monkeypatch, _fake_tensorrt("9.3.0"))
    with pytest.raises(BackendUnavailableError, match="too old.*pip install -U tensorrt"):
        build_module.import_tensorrt()
    _install(monkeypatch, _fake_tensorrt("12.0.1"))
    with caplog.at_level("WARNING", logger="fhsdk.runtime.build"):
        build_module.import_tensorrt()
    assert "newer than the 11.x API" in caplog.text


def test_strongly_typed_flag_per_version(monkeypatch):
    assert build_module.strongly_typed_flags(_fake_tensorrt("10.13.3")) == 1 << 1
    assert build_module.strongly_typed_flags(_fake_tensorrt("11.3.0")) == 1 << 1
    assert build_module.strongly_typed_flags(_fake_tensorrt("11.3.0", strongly_typed_flag=False)) == 0
    with pytest.raises(BackendUnavailableError, match="strongly typed"):
        build_module.strongly_typed_flags(_fake_tensorrt("10.0.0", strongly_typed_flag=False))


@pytest.mark.parametrize("version", ["10.13.3", "11.3.0"])
def test_fp16_engine_builds_strongly_typed_from_the_fp16_graph(monkeypatch, no_gpu_needed, onnx_file, version):
    trt = _install(monkeypatch, _fake_tensorrt(version))
    backend_cls = tensorrt_backend.TensorRTBackend
    built = {}
    monkeypatch.setattr(backend_cls, "__init__", lambda self, path, device="cuda": built.update(path=path))
    monkeypatch.setattr(tensorrt_backend, "resolve_torch_device", lambda device: torch.device("cpu"))
    backend_cls.from_onnx(onnx_file, precision="fp16", batch_range=(1, 4, 16))
    plan = json.loads(read_engine(built["path"]))
    assert plan["strongly_typed"] and plan["fp16"]  # FP16 came from the graph, not a builder flag
    assert trt.log["builder_flags"] == []  # no weak-typing flags (11.x has none to set)
    assert trt.log["pool"] == (0, build_module.DEFAULT_WORKSPACE_MIB << 20)
    assert trt.log["profiles"] == [{"image": tuple(s["image"] for s in SHAPES)}]
    header, _ = read_header(built["path"])
    assert header["key"]["precision"] == "fp16" and header["key"]["tensorrt_version"] == version
    # an FP32 build of the FP32 file is another engine, FP32 by the graph
    fp32 = build_module.build_engine(onnx_file, *SHAPES)
    assert fp32.key.precision == "fp32" and fp32.engine_path != built["path"]
    assert graph_precision(onnx_file) == "fp32"
    # and the same build again is a cache hit
    assert build_module.build_engine(onnx_file, *SHAPES).from_cache


def test_build_reports_parse_errors_and_unprofiled_inputs(monkeypatch, no_gpu_needed, onnx_file, tmp_path):
    _install(monkeypatch, _fake_tensorrt("11.3.0"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not onnx")
    with pytest.raises(WeightsError, match="not a readable ONNX file"):
        build_module.build_engine(garbage, *SHAPES)
    with pytest.raises(InvalidInputError, match="missing \\['image'\\]"):
        build_module.build_engine(onnx_file, {"other": (1, 2)}, {"other": (1, 2)}, {"other": (1, 2)})


def _bound_backend(trt, profile_max=8):
    """A TensorRTBackend with a stand-in context, on CPU tensors (binding logic only)."""
    backend = object.__new__(tensorrt_backend.TensorRTBackend)
    backend._device = torch.device("cpu")
    backend.engine_path = "net.engine"
    backend.plan = IOPlan.from_engine_description(
        [("image", "INPUT", "FLOAT", (-1, 3, 8, 8)), ("score", "OUTPUT", "FLOAT", (-1, 4))]
    )
    backend.profile = OptimizationProfile((("image", (1, 3, 8, 8), (4, 3, 8, 8), (profile_max, 3, 8, 8)),))
    backend.context = trt.Context({"image": backend.profile.range("image")})
    return backend


@pytest.mark.parametrize("version", ["10.13.3", "11.3.0"])
def test_binding_checks_set_input_shape_and_addresses(version):
    trt = _fake_tensorrt(version)
    backend = _bound_backend(trt)
    buffers, outputs = backend._bind({"image": np.ones((3, 3, 8, 8), np.float32)})
    assert outputs["score"].shape == (3, 4) and len(buffers) == 2
    assert set(backend.context.addresses) == {"image", "score"}
    # set_input_shape's False (a shape outside the profile) is an error, not a silent bad run
    with pytest.raises(InvalidInputError, match="refused shape"):
        backend._bind({"image": np.ones((9, 3, 8, 8), np.float32)})


def test_profile_max_batch_is_what_run_splits_at():
    profile = OptimizationProfile(
        (("image", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8)), ("mask", (1, 8), (4, 8), (6, 8)))
    )
    assert profile.max_batch() == 6
    assert OptimizationProfile(()).max_batch() is None
