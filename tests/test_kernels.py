"""Native kernels (fhsdk._C via fhsdk.kernels) against the NumPy references, OpenCV and torch.

CPU paths run everywhere; CUDA tests run where torch sees a GPU and compare with the CPU kernel.
"""

import os

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fhsdk import kernels as K
from fhsdk import kernels_reference as R
from fhsdk.errors import BackendUnavailableError, InvalidInputError
from fhsdk.kernels.arguments import _SMALL_AFFINE_BATCH

_C = pytest.importorskip("fhsdk._C", reason="fhsdk._C is not built (pip install -e .)")
# Skip only where there is no GPU at all: on a GPU machine an extension that cannot use it (built
# without nvcc, wrong architecture, driver mismatch) must fail these tests, not skip them.
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
HOST_BACKENDS = ["cpu", "reference"]
MEAN, SCALE = (123.7, 116.3, 103.5), (0.0171, 0.0175, 0.0174)


def similarity(side_out, center, side_in, angle=0.0):
    """Forward (frame -> crop) matrix of a face of `side_in` px at `center`, rotated by `angle`."""
    s = side_out / side_in
    c, sn = s * np.cos(angle), s * np.sin(angle)
    m = np.array([[c, -sn, 0.0], [sn, c, 0.0]])
    m[:, 2] = side_out / 2 - m[:, :2] @ np.asarray(center, float)
    return m


def invert(m):
    full = np.vstack([m, [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def smooth_frame(rng, h, w):
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2.0)


# ---- build --------------------------------------------------------------------------------------


def test_cuda_sources_compiled_when_nvcc_present():
    """The build compiles the CUDA kernels whenever nvcc exists (unless FHSDK_NO_CUDA was set)."""
    if os.environ.get("FHSDK_NO_CUDA", "0") not in ("", "0"):
        pytest.skip("FHSDK_NO_CUDA is set: this build skips the CUDA kernels on purpose")
    nvcc = _find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found here")
    assert _C.cuda_compiled(), f"nvcc exists at {nvcc} but fhsdk._C has no CUDA kernels; rebuild with pip install -e ."


def _find_nvcc():
    import shutil

    for path in (os.environ.get("NVCC"), "/usr/local/cuda/bin/nvcc", shutil.which("nvcc")):
        if path and os.path.isfile(path):
            return path
    return None


def test_cuda_entry_points_raise_clearly_without_gpu():
    if K.cuda_available():
        pytest.skip("a GPU is usable here")
    reason = _C.cuda_unavailable_reason()
    assert reason
    with pytest.raises(RuntimeError, match="CUDA kernels unavailable"):
        _C.cosine_topk_cuda(0, 1, 4, 4, 0, "float32", 4, 4, 1, False, 0, 0)
    with pytest.raises(RuntimeError, match="CUDA kernels unavailable"):
        _C.resize_normalize_affine_cuda(0, 4, 4, 12, 0, 1, 2, 2, MEAN, SCALE, True, "float32", 0)


# ---- resize_normalize form (a) ------------------------------------------------------------------


@pytest.mark.parametrize("swap_rb", [True, False])
def test_affine_matches_cv2_warp_affine(swap_rb):
    rng = np.random.default_rng(0)
    frame = smooth_frame(rng, 240, 320)
    mats = np.stack([
        similarity(64, (160, 120), 80, 0.2),       # inside
        similarity(64, (5, 10), 60, -0.4),         # across the top-left corner
        similarity(32, (318, 238), 40, 0.0),       # across the bottom-right corner
        similarity(48, (500, 500), 50, 0.1),       # entirely outside: zeros
        similarity(112, (100, 100), 24, 0.3),      # upscaling a tiny face
    ])  # fmt: skip
    out = K.resize_normalize_affine(frame, mats, 48, MEAN, SCALE, swap_rb=swap_rb, backend="cpu")
    assert out.shape == (5, 3, 48, 48) and out.dtype == np.float32
    for i, m in enumerate(mats):
        warped = cv2.warpAffine(frame.astype(np.float32), m, (48, 48), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
        if swap_rb:
            warped = warped[..., ::-1]
        expect = ((warped - np.float32(MEAN)) * np.float32(SCALE)).transpose(2, 0, 1)
        # cv2 rounds source coordinates to 1/32 px; on a smooth frame that moves values < 1 grey level.
        np.testing.assert_allclose(out[i], expect, atol=1.0 * max(SCALE))
    assert np.allclose(out[3], (0 - np.float32(MEAN)[:, None, None]) * np.float32(SCALE)[:, None, None])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_affine_inverse_map_equals_forward(backend):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    fwd = similarity(20, (30, 20), 25, 0.5)
    a = K.resize_normalize_affine(frame, fwd, 20, 0, 1, backend=backend)
    b = K.resize_normalize_affine(frame, invert(fwd), 20, 0, 1, inverse_map=True, backend=backend)
    np.testing.assert_allclose(a, b, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 60), w=st.integers(1, 60), n=st.integers(0, 5),
    out_h=st.integers(1, 40), out_w=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
    swap=st.booleans(), half=st.booleans(),
)  # fmt: skip
def test_affine_cpu_matches_reference_random(h, w, n, out_h, out_w, seed, swap, half):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # noise: the hardest case for sampling
    inv = np.empty((n, 2, 3))
    inv[:, :, :2] = rng.uniform(-2, 2, (n, 2, 2))
    inv[:, :, 2] = rng.uniform(-20, 80, (n, 2))
    dtype = np.float16 if half else np.float32
    got = K.resize_normalize_affine(frame, inv, (out_h, out_w), MEAN, SCALE, swap, dtype, inverse_map=True)
    want = R.resize_normalize_affine_ref(frame, inv, out_h, out_w, MEAN, SCALE, swap)
    assert got.shape == (n, 3, out_h, out_w) and got.dtype == dtype
    tol = 2e-3 if half else 0.25 * max(SCALE)  # float coordinates: < 0.25 grey level on noise
    np.testing.assert_allclose(got.astype(np.float64), want, atol=tol, rtol=2e-3 if half else 0)


def test_affine_float16_large_output_and_contiguity():
    rng = np.random.default_rng(2)
    frame = smooth_frame(rng, 300, 400)[:, ::-1]  # negative pixel stride: made contiguous by the front
    m = similarity(224, (200, 150), 150)
    f32 = K.resize_normalize_affine(frame, m, 224, MEAN, SCALE)
    f16 = K.resize_normalize_affine(frame, m, 224, MEAN, SCALE, dtype=np.float16)
    assert f16.dtype == np.float16 and f16.shape == (1, 3, 224, 224)
    np.testing.assert_array_equal(f16, f32.astype(np.float16))  # same float, correctly rounded
    ref = R.resize_normalize_affine_ref(np.ascontiguousarray(frame), invert(m)[None], 224, 224, MEAN, SCALE)
    np.testing.assert_allclose(f32, ref, atol=0.25 * max(SCALE))


def test_affine_threads_do_not_change_results():
    rng = np.random.default_rng(3)
    frame = smooth_frame(rng, 200, 300)
    mats = np.stack(
        [similarity(150, rng.uniform(0, 300, 2), rng.uniform(30, 120), rng.uniform(-1, 1)) for _ in range(6)]
    )
    one = K.resize_normalize_affine(frame, mats, 150, MEAN, SCALE, num_threads=1)
    many = K.resize_normalize_affine(frame, mats, 150, MEAN, SCALE, num_threads=3)
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("n", [1, _SMALL_AFFINE_BATCH, _SMALL_AFFINE_BATCH + 1, 40])
def test_affine_inversion_and_checks_in_both_paths(n):
    """Few matrices are inverted with Python floats, many with NumPy: same results, same errors."""
    rng = np.random.default_rng(4)
    frame = smooth_frame(rng, 60, 80)
    mats = np.stack([similarity(12, rng.uniform(0, 80, 2), rng.uniform(10, 40), rng.uniform(-1, 1)) for _ in range(n)])
    fwd = K.resize_normalize_affine(frame, mats, 12, MEAN, SCALE)
    inv = np.stack([cv2.invertAffineTransform(m) for m in mats])
    np.testing.assert_allclose(fwd, K.resize_normalize_affine(frame, inv, 12, MEAN, SCALE, inverse_map=True), atol=1e-3)
    for bad, msg in ((np.nan, "NaN"), (np.inf, "NaN or inf")):
        broken = mats.copy()
        broken[-1, 1, 2] = bad
        with pytest.raises(InvalidInputError, match=msg):
            K.resize_normalize_affine(frame, broken, 12, MEAN, SCALE)
    singular = mats.copy()
    singular[-1, :, :2] = 0
    with pytest.raises(InvalidInputError, match="singular"):
        K.resize_normalize_affine(frame, singular, 12, MEAN, SCALE)
    K.resize_normalize_affine(frame, singular, 12, MEAN, SCALE, inverse_map=True)  # no inversion: valid


def test_affine_input_validation():
    frame = np.zeros((10, 10, 3), np.uint8)
    m = similarity(8, (5, 5), 8)
    with pytest.raises(InvalidInputError, match="uint8"):
        K.resize_normalize_affine(frame.astype(np.float32), m, 8, 0, 1)
    with pytest.raises(InvalidInputError, match="2 x 3"):
        K.resize_normalize_affine(frame, np.zeros((3, 3)), 8, 0, 1)
    with pytest.raises(InvalidInputError, match="singular"):
        K.resize_normalize_affine(frame, np.zeros((2, 3)), 8, 0, 1)
    with pytest.raises(InvalidInputError, match="size"):
        K.resize_normalize_affine(frame, m, 0, 0, 1)
    with pytest.raises(InvalidInputError, match="mean"):
        K.resize_normalize_affine(frame, m, 8, (1, 2), 1)
    for bad in ((1, 2, float("nan")), ([1, 2, 3],), [1, "x", 3], "abc"):  # tuples take a cached path
        with pytest.raises(InvalidInputError, match="scale"):
            K.resize_normalize_affine(frame, m, 8, 0, bad)
    with pytest.raises(InvalidInputError, match="dtype"):
        K.resize_normalize_affine(frame, m, 8, 0, 1, dtype=np.int32)
    with pytest.raises(InvalidInputError, match="backend"):
        K.resize_normalize_affine(frame, m, 8, 0, 1, backend="gpu")
    with pytest.raises(InvalidInputError, match="CUDA device"):
        K.resize_normalize_affine(frame, m, 8, 0, 1, backend="cuda")
    assert K.resize_normalize_affine(frame, np.zeros((0, 2, 3)), 8, 0, 1).shape == (0, 3, 8, 8)


# ---- resize_normalize form (b) ------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(0, 3), c=st.integers(1, 4), h=st.integers(1, 40), w=st.integers(1, 40),
    out_h=st.integers(1, 60), out_w=st.integers(1, 60), seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_batch_matches_torch_interpolate(b, c, h, w, out_h, out_w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, c, h, w)).astype(np.float32)
    mean, scale = rng.uniform(-1, 1, c), rng.uniform(0.5, 2, c)
    got = K.resize_normalize_batch(x, (out_h, out_w), mean, scale)
    ref = R.resize_normalize_batch_ref(x, out_h, out_w, mean, scale)
    assert got.shape == (b, c, out_h, out_w) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4)
    if b:
        t = torch.nn.functional.interpolate(torch.from_numpy(x), size=(out_h, out_w), mode="bilinear",
                                            align_corners=False, antialias=False).numpy()  # fmt: skip
        expect = (t - mean.reshape(1, -1, 1, 1)) * scale.reshape(1, -1, 1, 1)
        np.testing.assert_allclose(got, expect, atol=1e-4)


def test_batch_hallucinator_to_recogniser_size_float16():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 255, (4, 3, 128, 128)).astype(np.float32)
    f32 = K.resize_normalize_batch(x, 150, MEAN, SCALE)
    f16 = K.resize_normalize_batch(x, 150, MEAN, SCALE, dtype=np.float16)
    np.testing.assert_array_equal(f16, f32.astype(np.float16))
    ref = K.resize_normalize_batch(x.astype(np.float64), 150, MEAN, SCALE, backend="reference")
    np.testing.assert_allclose(f32, ref, atol=1e-4)


def test_batch_input_validation():
    with pytest.raises(InvalidInputError, match="B x C x H x W"):
        K.resize_normalize_batch(np.zeros((3, 8, 8), np.float32), 4, 0, 1)
    with pytest.raises(InvalidInputError, match="mean"):
        K.resize_normalize_batch(np.zeros((1, 3, 8, 8), np.float32), 4, (1, 2), 1)
    with pytest.raises(InvalidInputError, match="C, H, W"):
        K.resize_normalize_batch(np.zeros((1, 3, 0, 8), np.float32), 4, 0, 1)


# ---- cosine_topk --------------------------------------------------------------------------------


def check_topk(q, g, k, idx, sims, normalize=False, atol=1e-5):
    """Scores equal the reference's top-k scores and every returned index really has its score
    (robust to near-ties whose order float32 and float64 may see differently)."""
    ref_idx, ref_sims = R.cosine_topk_ref(q, g, k, normalize)
    assert idx.shape == ref_idx.shape and sims.shape == ref_sims.shape
    assert idx.dtype == np.int64 and sims.dtype == np.float32
    np.testing.assert_allclose(sims, ref_sims, atol=atol)
    full = R.cosine_similarities_ref(q, g, normalize)
    if idx.size:
        np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), sims, atol=atol)
        assert np.all(np.diff(sims, axis=1) <= 0), "not sorted descending"
        assert all(len(set(row)) == len(row) for row in idx.tolist()), "duplicate indices"


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(0, 9), n=st.integers(0, 700), d=st.integers(1, 40), k=st.integers(1, 20),
    half=st.booleans(), normalize=st.booleans(), seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_topk_cpu_matches_reference_random(b, n, d, k, half, normalize, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, d)).astype(np.float32)
    g = rng.standard_normal((n, d)).astype(np.float16 if half else np.float32)
    idx, sims = K.cosine_topk(q, g, k, normalize=normalize, backend="cpu")
    assert idx.shape == (b, min(k, n))
    check_topk(q, g.astype(np.float32), k, idx, sims, normalize, atol=1e-4 * max(1, d if not normalize else 1))


@pytest.mark.parametrize("d", [128, 127, 13, 1])
@pytest.mark.parametrize("gdtype", [np.float32, np.float16])
def test_topk_cpu_multi_tile_multi_thread(d, gdtype):
    """N spans many tiles and both threads; exact indices where scores have clear gaps."""
    rng = np.random.default_rng(5)
    n = 5000
    g = rng.standard_normal((n, d)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = g[[17, 4999, 2500]] + 0.01 * rng.standard_normal((3, d)).astype(np.float32)  # near copies
    g = g.astype(gdtype)
    for threads in (1, 2, 3):
        idx, sims = K.cosine_topk(q, g, 10, normalize=True, num_threads=threads)
        check_topk(q, g.astype(np.float32), 10, idx, sims, normalize=True, atol=1e-4)
        if d > 1:
            assert idx[:, 0].tolist() == [17, 4999, 2500]


@pytest.mark.parametrize("d", [128, 13])
@pytest.mark.parametrize("gdtype", [np.float32, np.float16])
@pytest.mark.parametrize("normalize", [False, True])
def test_topk_streaming_path_matches_packed_path(d, gdtype, normalize):
    """B <= 3 streams the gallery unpacked, B >= 4 packs tiles: same results, any thread count."""
    rng = np.random.default_rng(8)
    n = 4099  # not a multiple of the 4-row blocks; longer than the prefetch distance
    g = (rng.standard_normal((n, d)) * rng.uniform(0.5, 2, (n, 1))).astype(gdtype)
    q = rng.standard_normal((6, d)).astype(np.float32)
    packed_idx, packed_sims = K.cosine_topk(q, g, 7, normalize=normalize, num_threads=1)
    for b in (1, 2, 3):
        for threads in (1, 2, 3):
            idx, sims = K.cosine_topk(q[:b], g, 7, normalize=normalize, num_threads=threads)
            check_topk(q[:b], g.astype(np.float32), 7, idx, sims, normalize, atol=1e-4 * (1 if normalize else d))
            np.testing.assert_allclose(sims, packed_sims[:b], rtol=1e-5, atol=1e-5)
            assert idx.tolist() == packed_idx[:b].tolist()


def test_topk_ties_break_by_lower_index():
    g = np.ones((600, 8), np.float32)
    g[[3, 300, 599]] *= 2  # three equal best rows
    idx, sims = K.cosine_topk(np.ones((1, 8), np.float32), g, 5)
    assert idx[0].tolist() == [3, 300, 599, 0, 1]
    np.testing.assert_array_equal(sims[0], [16, 16, 16, 8, 8])


@pytest.mark.parametrize("backend", HOST_BACKENDS)
def test_topk_edge_shapes(backend):
    rng = np.random.default_rng(6)
    g = rng.standard_normal((4, 16)).astype(np.float32)
    q = rng.standard_normal((3, 16)).astype(np.float32)
    idx, sims = K.cosine_topk(q, g, 10, backend=backend)  # k > N: all N, no padding
    assert idx.shape == sims.shape == (3, 4)
    assert sorted(idx[0].tolist()) == [0, 1, 2, 3]
    assert K.cosine_topk(q[:0], g, 3, backend=backend)[0].shape == (0, 3)
    assert K.cosine_topk(q, g[:0], 3, backend=backend)[1].shape == (3, 0)
    one_idx, one_sims = K.cosine_topk(q, g[:1], 5, backend=backend)  # N = 1
    assert one_idx.tolist() == [[0]] * 3
    np.testing.assert_allclose(one_sims[:, 0], q @ g[0], rtol=1e-5)
    vi, vs = K.cosine_topk(q[0], g, 2, backend=backend)  # 1-D query
    assert vi.shape == vs.shape == (2,)


def test_topk_input_validation():
    q, g = np.zeros((2, 8), np.float32), np.zeros((5, 8), np.float32)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(InvalidInputError, match="k must"):
            K.cosine_topk(q, g, bad_k)
    with pytest.raises(InvalidInputError, match="D=8 but the gallery D=7"):
        K.cosine_topk(q, np.zeros((5, 7), np.float32), 1)
    with pytest.raises(InvalidInputError, match="B x D"):
        K.cosine_topk(q[None], g, 1)
    with pytest.raises(InvalidInputError, match="floating"):
        K.cosine_topk(q, g.astype(np.int32), 1)


def test_topk_accepts_torch_cpu_tensors_and_float64():
    rng = np.random.default_rng(7)
    g = rng.standard_normal((100, 12))
    q = rng.standard_normal((2, 12))
    idx, sims = K.cosine_topk(torch.from_numpy(q), g, 3)
    check_topk(q.astype(np.float32), g.astype(np.float32), 3, idx, sims, atol=1e-4)


def test_cuda_backend_unavailable_is_clear():
    if K.cuda_available():
        pytest.skip("a GPU is usable here")
    assert K.cuda_unavailable_reason()
    with pytest.raises((BackendUnavailableError, InvalidInputError)):
        K.cosine_topk(np.zeros((1, 4), np.float32), np.zeros((2, 4), np.float32), 1, backend="cuda")


# ---- CUDA (run on a GPU machine) ----------------------------------------------------------------


@needs_gpu
@pytest.mark.parametrize("half", [False, True])
def test_cuda_affine_matches_cpu(half):
    rng = np.random.default_rng(8)
    frame = rng.integers(0, 256, (481, 643, 3), dtype=np.uint8)
    mats = np.stack([similarity(s, rng.uniform(-30, 670, 2), rng.uniform(10, 300), rng.uniform(-1, 1))
                     for s in (112,) * 7])  # fmt: skip
    dtype = np.float16 if half else np.float32
    cpu = K.resize_normalize_affine(frame, mats, 112, MEAN, SCALE, dtype=dtype)
    gpu = K.resize_normalize_affine(torch.from_numpy(frame).cuda(), mats, 112, MEAN, SCALE, dtype=dtype)
    assert gpu.is_cuda and gpu.dtype == getattr(torch, np.dtype(dtype).name)
    np.testing.assert_allclose(gpu.float().cpu().numpy(), cpu.astype(np.float32), atol=2e-2 if half else 2e-3)


@needs_gpu
def test_cuda_batch_matches_torch():
    x = torch.rand(5, 3, 33, 47, device="cuda") * 255
    got = K.resize_normalize_batch(x, (150, 150), MEAN, SCALE)
    t = torch.nn.functional.interpolate(x, size=(150, 150), mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
    scale = torch.tensor(SCALE, device="cuda").view(1, 3, 1, 1)
    torch.testing.assert_close(got, (t - mean) * scale, atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(
        got.cpu().numpy(), K.resize_normalize_batch(x.cpu().numpy(), 150, MEAN, SCALE), atol=1e-4
    )


@needs_gpu
def test_extension_uses_the_gpu_when_one_is_present():
    assert K.cuda_available(), f"a CUDA GPU is present but fhsdk._C cannot use it: {K.cuda_unavailable_reason()}"


@needs_gpu
def test_cuda_kernels_on_a_side_stream_match_the_current_stream():
    frame = torch.randint(0, 256, (480, 640, 3), dtype=torch.uint8, device="cuda")
    mats = np.stack([similarity(112, (320, 240), 80, a) for a in (0.0, 0.3)])
    side = torch.cuda.Stream()
    on_side = K.resize_normalize_affine(frame, mats, 112, MEAN, SCALE, stream=side)
    torch.cuda.current_stream().wait_stream(side)
    expected = K.resize_normalize_affine(frame, mats, 112, MEAN, SCALE)
    torch.testing.assert_close(on_side, expected)
    gallery = torch.randn(5000, 64, device="cuda")
    queries = torch.randn(70_000, 64, device="cuda")  # over the 65,535 queries one launch's grid takes
    idx, _ = K.cosine_topk(queries, gallery, 3, stream=side)
    torch.cuda.current_stream().wait_stream(side)
    assert tuple(idx.shape) == (70_000, 3) and bool((idx[:, 0] == (queries @ gallery.t()).argmax(1)).all())


@pytest.mark.parametrize(
    "n,d,k,half,tile",
    [
        (1000, 128, 5, False, 97),
        (1000, 13, 10, True, 1000),
        (5, 8, 10, False, 2),
        (300, 16, 3, False, 7),
        (0, 4, 3, False, 5),
    ],
)
def test_gemm_topk_matches_the_cpu_kernel_exactly(n, d, k, half, tile):
    # The CUDA front's GEMM + top-k, run here on CPU tensors: same indices and order as the C++ kernel.
    rng = np.random.default_rng(n + d)
    g = rng.standard_normal((n, d)).astype(np.float16 if half else np.float32)
    q = rng.standard_normal((4, d)).astype(np.float32)
    for normalize in (False, True):
        want_idx, want_sims = K.cosine_topk(q, g, k, normalize=normalize, backend="cpu")
        idx, sims = K.cosine_topk_gemm(torch.from_numpy(q), torch.from_numpy(g), k, normalize, tile_rows=tile)
        np.testing.assert_array_equal(idx.numpy(), want_idx)
        np.testing.assert_allclose(sims.numpy(), want_sims, atol=1e-5)


def test_gemm_topk_breaks_ties_by_lower_index_across_tiles():
    gallery = torch.zeros(50, 4)
    gallery[:, 0] = 1.0
    gallery[[3, 17, 40], 0] = 2.0  # three best rows, then 47 tied rows
    idx, sims = K.cosine_topk_gemm(torch.ones(2, 4), gallery, 6, tile_rows=7)
    assert idx.tolist() == [[3, 17, 40, 0, 1, 2]] * 2 and sims[0].tolist() == [2, 2, 2, 1, 1, 1]


@needs_gpu
@pytest.mark.parametrize(
    "n,d,k,half",
    [
        (1, 8, 5, False),
        (1000, 13, 7, True),
        (70_000, 128, 5, False),
        (70_000, 128, 100, True),
        (3, 4, 10, False),
        (0, 4, 3, False),
    ],
)
def test_cuda_topk_matches_cpu(n, d, k, half):
    rng = np.random.default_rng(9)
    g = rng.standard_normal((n, d)).astype(np.float16 if half else np.float32)
    q = rng.standard_normal((6, d)).astype(np.float32)
    for normalize in (False, True):
        idx, sims = K.cosine_topk(torch.from_numpy(q).cuda(), torch.from_numpy(g).cuda(), k, normalize=normalize)
        assert idx.is_cuda and idx.dtype == torch.int64 and sims.dtype == torch.float32
        # a float16 gallery is multiplied on tensor cores with float16 queries: error ~2^-11 |q||g|
        bound = (
            1e-3
            if not half
            else 2e-3
            * float(
                np.linalg.norm(q, axis=1).max()
                * (1.0 if normalize else np.linalg.norm(g.astype(np.float32), axis=1).max(initial=1.0))
            )
        )
        check_topk(q, g.astype(np.float32), k, idx.cpu().numpy(), sims.cpu().numpy(), normalize, atol=bound)
    empty = K.cosine_topk(torch.zeros(0, d, device="cuda"), torch.from_numpy(g).cuda(), k)[0]
    assert tuple(empty.shape) == (0, min(k, n))
