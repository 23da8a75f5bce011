"""TensorRT-independent logic: profiles, shape strings, IO plans, layer pinning, engine cache.

These run everywhere; the TensorRT integration tests at the end need TensorRT and a GPU.
"""

import hashlib
import json
import struct
from dataclasses import replace

import pytest
import torch

from fhsdk.detect.mtcnn import pnet_image_range, pyramid_sizes
from fhsdk.errors import FHSDKError, InvalidInputError
from fhsdk.runtime.base import TensorSpec
from fhsdk.runtime.engine_cache import (
    MAGIC,
    EngineCacheError,
    EngineKey,
    cache_path,
    read_engine,
    read_header,
    write_engine,
)
from fhsdk.runtime.presets import get_preset
from fhsdk.runtime.trt_plan import (
    IOPlan,
    OptimizationProfile,
    compute_profile,
    format_shapes,
    parse_shapes,
    torch_dtype_name,
)

# -- optimisation profiles ---------------------------------------------------------------------------


def test_profile_for_dynamic_batch_keeps_fixed_dims():
    specs = [TensorSpec("image", "float32", (-1, 3, 150, 150))]
    profile = compute_profile(specs, batch=(1, 32, 256))
    assert profile.range("image") == ((1, 3, 150, 150), (32, 3, 150, 150), (256, 3, 150, 150))


def test_profile_for_pnet_takes_spatial_ranges():
    specs = [TensorSpec("image", "float32", (-1, 3, -1, -1))]
    spatial = {"image": ((12, 12), (90, 160), (648, 1152))}
    profile = compute_profile(specs, batch=(1, 1, 4), spatial=spatial)
    assert profile.range("image") == ((1, 3, 12, 12), (1, 3, 90, 160), (4, 3, 648, 1152))


def test_profile_skips_static_inputs_and_sorts_by_name():
    specs = [
        TensorSpec("b", "float32", (-1, 4)),
        TensorSpec("fixed", "float32", (2, 2)),
        TensorSpec("a", "float32", (-1, 8)),
    ]
    profile = compute_profile(specs, batch=(1, 2, 3))
    assert profile.names() == ["a", "b"]


def test_profile_needs_spatial_range_for_dynamic_hw():
    with pytest.raises(InvalidInputError, match="dynamic height/width"):
        compute_profile([TensorSpec("image", "float32", (-1, 3, -1, -1))], batch=(1, 1, 1))


def test_profile_refuses_other_dynamic_axes():
    with pytest.raises(InvalidInputError, match="dynamic axis 1"):
        compute_profile([TensorSpec("x", "float32", (-1, -1))])


@pytest.mark.parametrize("batch", [(0, 1, 2), (4, 2, 8), (1, 9, 8)])
def test_profile_refuses_unordered_ranges(batch):
    with pytest.raises(InvalidInputError, match="min <= opt <= max"):
        compute_profile([TensorSpec("x", "float32", (-1, 3))], batch=batch)


def test_profile_from_trtexec_shapes_and_check():
    profile = OptimizationProfile.from_shapes(
        parse_shapes("image:1x3x24x24"), parse_shapes("image:64x3x24x24"), parse_shapes("image:1024x3x24x24")
    )
    profile.check({"image": (1024, 3, 24, 24)})
    with pytest.raises(InvalidInputError, match="outside the engine's profile"):
        profile.check({"image": (1025, 3, 24, 24)})
    with pytest.raises(InvalidInputError, match="same inputs"):
        OptimizationProfile.from_shapes({"a": (1,)}, {"b": (1,)}, {"a": (1,)})


def test_pnet_pyramid_follows_mtcnn_schedule():
    sizes = pyramid_sizes(480, 640, min_face_size=20, scale_factor=0.709)
    # first level is scale 12/20; each next level shrinks by the factor; the last keeps >= 12 px
    assert sizes[0] == (288, 384)
    assert all(min(s) >= 12 for s in sizes)
    assert 480 * 0.6 * 0.709 ** (len(sizes) - 1) >= 12 > 480 * 0.6 * 0.709 ** len(sizes)
    assert all(a[0] > b[0] for a, b in zip(sizes, sizes[1:]))
    # a smaller minimum face means a larger first level and more levels
    assert len(pyramid_sizes(480, 640, min_face_size=12)) > len(sizes)


def test_pnet_image_range_covers_every_level():
    low, opt, high = pnet_image_range((1080, 1920), min_face_size=20)
    for h, w in pyramid_sizes(1080, 1920, min_face_size=20) + pyramid_sizes(480, 640, min_face_size=40):
        assert low[0] <= h <= high[0] and low[1] <= w <= high[1]
    assert low <= opt <= high
    # the preset's profile also takes every level of a portrait 1080p frame
    preset_low, _, preset_high = get_preset("mtcnn_pnet").spatial_range
    assert preset_high == (1152, 1152) and preset_low == low
    for h, w in pyramid_sizes(1920, 1080, min_face_size=20):
        assert h <= preset_high[0] and w <= preset_high[1]


def test_profiles_cover_what_the_pipeline_sends():
    # R-Net: 614-675 candidates per crowd_1080p.mp4 frame; two frames' worth must fit one call
    assert get_preset("mtcnn_rnet").batch_range[2] >= 2 * 675
    # hallucinators are fed crops at the packaged models' native side, 32 px, in batches of 64
    assert get_preset("edsr").spatial_range[1] == (32, 32) and get_preset("edsr").batch_range[1] == 64


def test_pnet_image_range_refuses_frames_too_small():
    with pytest.raises(InvalidInputError):
        pnet_image_range((10, 10), min_face_size=20)


# -- shape strings ---------------------------------------------------------------------------------


def test_parse_and_format_shapes_round_trip():
    text = "image:1x3x150x150,mask:4X10"
    shapes = parse_shapes(text)
    assert shapes == {"image": (1, 3, 150, 150), "mask": (4, 10)}
    assert parse_shapes(format_shapes(shapes)) == shapes


@pytest.mark.parametrize("bad", ["image", "image:", "image:1x0x3", "image:1xax3", ":1x2"])
def test_parse_shapes_rejects_malformed(bad):
    with pytest.raises(InvalidInputError, match="NAME:DxD"):
        parse_shapes(bad)


# -- IO plan -----------------------------------------------------------------------------------------


def test_io_plan_splits_inputs_outputs_and_maps_dtypes():
    plan = IOPlan.from_engine_description(
        [
            ("image", "TensorIOMode.INPUT", "DataType.FLOAT", (-1, 3, -1, -1)),
            ("prob", "OUTPUT", "FLOAT", (-1, -1, -1)),
            ("bbox_reg", "OUTPUT", "HALF", (-1, 4, -1, -1)),
        ]
    )
    assert [t.name for t in plan.inputs] == ["image"]
    assert [t.name for t in plan.outputs] == ["prob", "bbox_reg"]
    assert plan.outputs[1].dtype == "float16"
    assert plan.input_shapes(7, spatial=(30, 40)) == {"image": (7, 3, 30, 40)}
    inputs, outputs = plan.specs()
    assert inputs[0] == TensorSpec("image", "float32", (-1, 3, -1, -1))
    assert all(getattr(torch, t.dtype) in (torch.float32, torch.float16) for t in plan.tensors)


def test_io_plan_refuses_unknown_modes_and_dtypes():
    with pytest.raises(InvalidInputError, match="IO mode"):
        IOPlan.from_engine_description([("x", "NONE", "FLOAT", (1,))])
    with pytest.raises(InvalidInputError, match="no torch equivalent"):
        torch_dtype_name("INT4")


def test_io_plan_needs_spatial_sizes_for_dynamic_hw():
    plan = IOPlan.from_engine_description([("image", "INPUT", "FLOAT", (-1, 3, -1, -1))])
    with pytest.raises(InvalidInputError, match="dynamic axis 2"):
        plan.input_shapes(1)


# -- engine cache --------------------------------------------------------------------------------------


def _key(**changes) -> EngineKey:
    profile = compute_profile([TensorSpec("image", "float32", (-1, 3, 150, 150))], batch=(1, 32, 256))
    key = EngineKey(
        onnx_sha256=hashlib.sha256(b"onnx graph").hexdigest(),
        tensorrt_version="10.3.0",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability=(9, 0),
        precision="fp16",
        profile=profile,
        pinned_layers=("conv1",),
        pinned_layer_types=(),
        builder_options=(("workspace_mib", 4096),),
    )
    return replace(key, **changes)


CHANGES = {
    "onnx_sha256": hashlib.sha256(b"another graph").hexdigest(),
    "tensorrt_version": "10.4.0",
    "gpu_name": "NVIDIA H200",
    "compute_capability": (8, 9),
    "precision": "fp32",
    "profile": compute_profile([TensorSpec("image", "float32", (-1, 3, 150, 150))], batch=(1, 32, 512)),
    "pinned_layers": ("conv1", "conv2"),
    "pinned_layer_types": ("NORMALIZATION",),
    "builder_options": (("workspace_mib", 2048),),
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_engine_key_changes_with_every_component(field):
    base = _key()
    changed = _key(**{field: CHANGES[field]})
    assert changed.digest() != base.digest()
    assert cache_path(changed, "m", root="/tmp/x") != cache_path(base, "m", root="/tmp/x")


def test_engine_key_is_stable_and_order_independent(tmp_path):
    assert _key().digest() == _key().digest()
    assert _key(pinned_layers=("b", "a")).digest() == _key(pinned_layers=("a", "b", "a")).digest()
    assert _key(pinned_layer_types=("scale",)).digest() == _key(pinned_layer_types=("SCALE",)).digest()
    path = cache_path(_key(), stem="dlib resnet/v1", root=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("dlib_resnet_v1-fp16-")
    assert path.suffix == ".engine"


def test_engine_cache_round_trip(tmp_path):
    key = _key()
    engine = bytes(range(256)) * 10
    path = write_engine(tmp_path / "e.engine", key, engine)
    assert read_engine(path, key) == engine
    assert read_engine(path) == engine  # integrity check alone
    header, offset = read_header(path)
    assert header["key"] == key.to_dict() and header["engine_bytes"] == len(engine)
    assert path.read_bytes()[:8] == MAGIC and offset + len(engine) == path.stat().st_size
    assert not list(tmp_path.glob("*.tmp*"))


def test_engine_cache_refuses_tampered_bytes(tmp_path):
    path = write_engine(tmp_path / "e.engine", _key(), b"\x01" * 1000)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineCacheError, match="SHA-256"):
        read_engine(path, _key())


def test_engine_cache_refuses_truncated_engine(tmp_path):
    path = write_engine(tmp_path / "e.engine", _key(), b"\x01" * 1000)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(EngineCacheError, match="SHA-256"):
        read_engine(path)


def test_engine_cache_refuses_other_key_naming_the_difference(tmp_path):
    path = write_engine(tmp_path / "e.engine", _key(), b"engine")
    with pytest.raises(EngineCacheError, match="differs in: gpu_name, tensorrt_version"):
        read_engine(path, _key(gpu_name="Tesla T4", tensorrt_version="10.0.1"))


def test_engine_cache_refuses_a_header_edited_to_match(tmp_path):
    # Someone rewrites the header's key to pass a foreign engine off as this one: the key now
    # matches, but the sha256 in the header was of the original bytes and the engine was swapped.
    path = write_engine(tmp_path / "e.engine", _key(), b"original engine")
    header, offset = read_header(path)
    foreign = b"foreign engine!"
    raw = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(struct.pack("<8sII", MAGIC, 1, len(raw)) + raw + foreign)
    with pytest.raises(EngineCacheError, match="SHA-256"):
        read_engine(path, _key())


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "truncated"),
        (b"NOTANENGINEFILE!" * 4, "bad magic"),
        (struct.pack("<8sII", MAGIC, 99, 2) + b"{}", "format version"),
        (struct.pack("<8sII", MAGIC, 1, 5) + b"{oops", "corrupt header"),
        (struct.pack("<8sII", MAGIC, 1, 2) + b"{}", "corrupt header"),
    ],
)
def test_engine_cache_refuses_foreign_files(tmp_path, content, match):
    path = tmp_path / "bad.engine"
    path.write_bytes(content)
    with pytest.raises(EngineCacheError, match=match) as info:
        read_engine(path)
    assert isinstance(info.value, FHSDKError)


def test_engine_cache_missing_file_says_how_to_build(tmp_path):
    with pytest.raises(EngineCacheError, match="fhsdk build-engine"):
        read_engine(tmp_path / "absent.engine")


# -- TensorRT integration (needs TensorRT and a CUDA GPU) -------------------------------------------------


@pytest.fixture
def tensorrt_gpu():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it needs an NVIDIA GPU machine)")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")


def test_tensorrt_fp16_engine_matches_torch(tmp_path, tensorrt_gpu, monkeypatch):
    from fhsdk.runtime import create_backend, export_preset, verify_backend

    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    preset = get_preset("dlib_resnet_v1")
    model = preset.build()
    onnx_path = export_preset("dlib_resnet_v1", tmp_path / "r.onnx", model=model).path
    backend = create_backend("tensorrt", onnx_path, precision="fp16", batch_range=(1, 8, 16))
    reference = create_backend("torch", model, device="cuda", precision="fp32", io=preset.io)
    for batch in (1, 7):
        result = verify_backend(backend, reference, preset.io.example_inputs(batch=batch))
        assert result.passed, result.table()
    # the second build is a cache hit
    again = create_backend("tensorrt", onnx_path, precision="fp16", batch_range=(1, 8, 16))
    assert again.engine_path == backend.engine_path
