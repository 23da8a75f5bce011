"""Python front of the native kernels in fhsdk._C (csrc/ops/): validation and dispatch.

Ops
    resize_normalize_affine  crop + align + resize + normalise faces straight from a BGR frame
    resize_normalize_batch   resize a float32 NCHW batch (bilinear, align_corners=False) + normalise
    cosine_topk              top-k gallery rows per query by cosine (dot product) similarity

Backends (``backend=``)
    "auto"       CUDA when the inputs live on a GPU, else the C++ CPU kernel, else "reference"
    "cpu"        the threaded C++ kernel; NumPy arrays (or CPU torch tensors) in, NumPy arrays out
    "cuda"       the CUDA kernel; inputs are torch CUDA tensors, CuPy arrays, or any object exposing
                 ``__cuda_array_interface__`` or DLPack; outputs are allocated by the input's
                 framework (torch for anything that is not CuPy) on the input's device, and the
                 kernel runs asynchronously on that framework's current stream (or ``stream=``:
                 it waits for the current stream first, and every torch buffer it touches is
                 marked ``record_stream`` on it; results are produced on that stream).
                 ``cosine_topk`` on CUDA is a matrix product per gallery tile (cuBLAS through
                 torch) plus a top-k (``cosine_topk_gemm``), not a kernel of csrc/
    "reference"  plain NumPy (fhsdk/kernels_reference.py), float64 arithmetic, for tests
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import torch

from fhsdk import kernels_reference as ref
from fhsdk.errors import BackendUnavailableError, InvalidInputError

try:
    from fhsdk import _C
except ImportError as exc:  # a source checkout that was never built
    _C = None
    _C_IMPORT_ERROR = str(exc)
else:
    _C_IMPORT_ERROR = ""

__all__ = [
    "BACKENDS",
    "native_available",
    "cuda_available",
    "cuda_unavailable_reason",
    "resize_normalize_affine",
    "resize_normalize_batch",
    "cosine_topk",
]

BACKENDS = ("auto", "cpu", "cuda", "reference")
_KDL_CUDA = 2  # DLPack device type of CUDA memory
# Per-call overhead matters: one 16 px face costs the kernel a few microseconds, so the checks below
# take fast paths for the common, already-valid arguments (NumPy arrays, ints, tuples of floats).
_F32, _F16 = np.dtype(np.float32), np.dtype(np.float16)
_SMALL_AFFINE_BATCH = 8  # up to this many matrices, plain Python floats beat NumPy's per-call overhead


def native_available() -> bool:
    """True when the compiled extension fhsdk._C can be imported."""
    return _C is not None


def cuda_unavailable_reason() -> str:
    """Empty when the CUDA kernels can run here, else why not."""
    if _C is None:
        return f"fhsdk._C is not built ({_C_IMPORT_ERROR}); run `pip install -e .`"
    return _C.cuda_unavailable_reason()


def cuda_available() -> bool:
    """True when the CUDA kernels were compiled in and a GPU with a driver is present."""
    return cuda_unavailable_reason() == ""


# ---- device arrays ------------------------------------------------------------------------------


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "is_cuda")


def _on_cuda(x) -> bool:
    """True for arrays living in CUDA device memory (torch, CuPy, DLPack, __cuda_array_interface__)."""
    if type(x) is np.ndarray:
        return False
    if _is_torch(x):
        return bool(x.is_cuda)
    if hasattr(x, "__cuda_array_interface__"):
        return True
    if hasattr(x, "__dlpack_device__"):
        try:
            return int(x.__dlpack_device__()[0]) == _KDL_CUDA
        except Exception:  # noqa: BLE001 - a foreign object whose DLPack query fails is not ours
            return False
    return False


class _CudaArray:
    """A contiguous device array: pointer, shape, dtype, device index and the framework owning it."""

    def __init__(self, x, name):
        self.framework = "cupy" if type(x).__module__.startswith("cupy") else "torch"
        if self.framework == "cupy":
            import cupy

            x = cupy.ascontiguousarray(x)
            self.ptr, self.device = int(x.data.ptr), int(x.device.id)
            self.dtype = np.dtype(x.dtype)
        else:
            if not _is_torch(x):
                try:
                    x = torch.from_dlpack(x) if hasattr(x, "__dlpack__") else torch.as_tensor(x, device="cuda")
                except Exception as exc:  # noqa: BLE001
                    raise InvalidInputError(
                        f"{name}: cannot read this CUDA array ({type(x).__name__}): {exc}; pass a torch "
                        "CUDA tensor or a CuPy array"
                    ) from exc
            x = x.contiguous()
            self.ptr, self.device = int(x.data_ptr()), int(x.device.index or 0)
            self.dtype = np.dtype(str(x.dtype).replace("torch.", ""))
        self.obj = x
        self.shape = tuple(int(s) for s in x.shape)

    def empty(self, shape, dtype):
        """A new contiguous array of the same framework on the same device."""
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.device):
                return cupy.empty(shape, dtype=dtype)
        return torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=f"cuda:{self.device}")

    def from_host(self, array):
        """Copies a small host array (e.g. affine matrices) to this array's device."""
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.device):
                return cupy.asarray(array)
        return torch.as_tensor(array, device=f"cuda:{self.device}")

    def launch_stream(self, stream, *allocated):
        """The cudaStream_t to launch on. With `stream=` given on torch memory, that stream first
        waits for the current one (where inputs and `allocated` buffers were made), and every
        buffer is marked used on it (`record_stream`), so the caching allocator cannot hand the
        memory to other work before the kernel is done with it."""
        handle = self.stream(stream)
        if stream is None or self.framework != "torch":
            return handle
        current = torch.cuda.current_stream(self.device)
        if handle == current.cuda_stream:
            return handle
        target = stream if isinstance(stream, torch.cuda.Stream) else torch.cuda.ExternalStream(handle, device=self.device)
        target.wait_stream(current)
        for buffer in (self.obj, *allocated):
            if hasattr(buffer, "record_stream"):
                buffer.record_stream(target)
        return handle

    def stream(self, stream):
        """The cudaStream_t to launch on: `stream` if given, else the framework's current stream."""
        if stream is not None:
            for attr in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
                if hasattr(stream, attr):
                    return int(getattr(stream, attr))
            return int(stream)
        if self.framework == "cupy":
            import cupy

            return int(cupy.cuda.get_current_stream().ptr)
        return int(torch.cuda.current_stream(self.device).cuda_stream)


def _ptr(a) -> int:
    if hasattr(a, "data_ptr"):
        return int(a.data_ptr())
    return int(a.data.ptr)


# ---- argument checks ----------------------------------------------------------------------------


def _resolve_backend(backend, on_cuda, name):
    if backend not in BACKENDS:
        raise InvalidInputError(f"{name}: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "cuda" if on_cuda else ("cpu" if _C is not None else "reference")
    if backend == "cuda":
        if not on_cuda:
            raise InvalidInputError(
                f"{name}: backend='cuda' needs the inputs on a CUDA device (torch CUDA tensor, CuPy array); "
                "move them there or use backend='cpu'"
            )
        why = cuda_unavailable_reason()
        if why:
            raise BackendUnavailableError(f"{name}: CUDA kernels unavailable: {why}")
    elif on_cuda:
        raise InvalidInputError(
            f"{name}: backend={backend!r} needs host arrays but got CUDA memory; use backend='cuda' or copy to host"
        )
    if backend == "cpu" and _C is None:
        raise BackendUnavailableError(f"{name}: {cuda_unavailable_reason()}")
    return backend


def _to_numpy(x, name):
    if type(x) is np.ndarray:
        return x
    if _is_torch(x):
        x = x.detach().numpy()  # CPU tensor (CUDA ones never get here)
    try:
        return np.asarray(x)
    except Exception as exc:  # noqa: BLE001
        raise InvalidInputError(f"{name}: expected an array, got {type(x).__name__}") from exc


def _out_size(size, name):
    if type(size) is int and size >= 1:
        return size, size
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except Exception as exc:  # noqa: BLE001
        raise InvalidInputError(f"{name}: size must be an int or (height, width), got {size!r}") from exc
    if h < 1 or w < 1:
        raise InvalidInputError(f"{name}: output size must be >= 1, got {(h, w)}")
    return h, w


def _per_channel(values, channels, what, name):
    """`values` as a tuple of `channels` finite floats (one number is repeated)."""
    if type(values) is tuple:  # usually the same constant tuple every call: validate it once
        try:
            return _per_channel_tuple(values, channels, what, name)
        except TypeError:  # unhashable items; the unchecked path below reports them
            pass
    return _per_channel_checked(values, channels, what, name)


def _per_channel_checked(values, channels, what, name):
    if type(values) in (float, int) or (type(values) not in (tuple, list) and isinstance(values, numbers.Real)):
        values = (values,)
    try:
        v = list(map(float, values))  # plain floats: this runs per call, keep it cheap
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: {what} must be one number or {channels} of them, got {values!r}") from exc
    if len(v) == 1:
        v = v * channels
    if len(v) != channels or not all(map(math.isfinite, v)):
        raise InvalidInputError(f"{name}: {what} must be one finite number or {channels} of them, got {values!r}")
    return tuple(v)


_per_channel_tuple = functools.lru_cache(maxsize=64)(_per_channel_checked)  # errors are never cached


def _out_dtype(dtype, name):
    if dtype is np.float32:
        return _F32
    if dtype is np.float16:
        return _F16
    if type(dtype).__module__.startswith("torch"):
        dtype = str(dtype).replace("torch.", "")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise InvalidInputError(f"{name}: dtype must be float32 or float16, got {dtype!r}") from exc
    if dt not in (np.float32, np.float16):
        raise InvalidInputError(f"{name}: dtype must be float32 or float16, got {dtype!r}")
    return dt


def _host_affines(affines, inverse_map, name):
    """N x 2 x 3 float32 OUTPUT -> SOURCE matrices (what the kernels sample with)."""
    if type(affines) is not np.ndarray and (_is_torch(affines) or hasattr(affines, "__cuda_array_interface__")):
        affines = affines.get() if hasattr(affines, "get") else affines.detach().cpu().numpy()
    m = np.asarray(affines, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != (2, 3):
        raise InvalidInputError(f"{name}: affines must be 2 x 3 or N x 2 x 3, got shape {m.shape}")
    if m.shape[0] <= _SMALL_AFFINE_BATCH:  # the usual few faces per frame: Python floats
        rows = m.reshape(-1, 6).tolist()
        if not all(all(map(math.isfinite, row)) for row in rows):
            raise InvalidInputError(f"{name}: affines contain NaN or inf")
        if not inverse_map:
            rows = [_invert_affine(*row, name) for row in rows]
        return np.array(rows, dtype=np.float32).reshape(-1, 2, 3)
    if not np.all(np.isfinite(m)):
        raise InvalidInputError(f"{name}: affines contain NaN or inf")
    if inverse_map:
        return np.ascontiguousarray(m, dtype=np.float32)
    # The same arithmetic as _invert_affine, vectorised (np.linalg.inv costs more than the kernel).
    a, b, tx, c, d, ty = m.reshape(-1, 6).T
    det = a * d - b * c
    if np.any(np.abs(det) < 1e-12):
        raise InvalidInputError(_SINGULAR.format(name=name))
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    inv = np.stack([ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty)], axis=1)
    return inv.astype(np.float32).reshape(-1, 2, 3)


_SINGULAR = "{name}: an affine matrix is singular (zero scale); check the landmarks"


def _invert_affine(a, b, tx, c, d, ty, name):
    """Inverse of the affine map [[a, b, tx], [c, d, ty]] (cv2.warpAffine's default is source -> output)."""
    det = a * d - b * c
    if abs(det) < 1e-12:
        raise InvalidInputError(_SINGULAR.format(name=name))
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty)


# ---- ops ----------------------------------------------------------------------------------------


def resize_normalize_affine(
    frame,
    affines,
    size,
    mean,
    scale,
    swap_rb=True,
    dtype=np.float32,
    inverse_map=False,
    backend="auto",
    num_threads=0,
    stream=None,
):
    """Warps N faces out of one BGR frame straight into a normalised NCHW batch.

    Equivalent, per face, to ``cv2.warpAffine(frame, M, (w, h), flags=INTER_LINEAR
    [| WARP_INVERSE_MAP], borderMode=BORDER_CONSTANT, borderValue=0)`` followed by BGR->RGB (if
    ``swap_rb``), ``(x - mean[c]) * scale[c]`` and HWC->CHW, in one pass and without cv2's 1/32-pixel
    coordinate rounding.

    Args:
        frame: uint8 H x W x 3 BGR frame (NumPy/CPU tensor, or CUDA memory for the CUDA kernel).
        affines: 2 x 3 or N x 2 x 3 matrices, host or device. By default they map frame coordinates
            to output coordinates (cv2.warpAffine's convention); ``inverse_map=True`` means they map
            output to frame coordinates (cv2.WARP_INVERSE_MAP).
        size: output side, int or (height, width).
        mean, scale: one number or 3, in OUTPUT channel order (RGB when swap_rb).
        dtype: float32 or float16 output.
    Returns:
        N x 3 x h x w array of ``dtype`` (NumPy on CPU; the input's framework on CUDA).
    """
    name = "resize_normalize_affine"
    on_cuda = _on_cuda(frame)
    backend = _resolve_backend(backend, on_cuda, name)
    out_h, out_w = _out_size(size, name)
    mean3, scale3 = _per_channel(mean, 3, "mean", name), _per_channel(scale, 3, "scale", name)
    dt = _out_dtype(dtype, name)
    inv = _host_affines(affines, inverse_map, name)
    n = inv.shape[0]

    if backend == "cuda":
        src = _CudaArray(frame, name)
        if src.dtype != np.uint8 or len(src.shape) != 3 or src.shape[2] != 3:
            raise InvalidInputError(f"{name}: frame must be uint8 H x W x 3, got {src.dtype} {src.shape}")
        out = src.empty((n, 3, out_h, out_w), dt)
        if n == 0:
            return out
        dev_affines = src.from_host(inv)
        _C.resize_normalize_affine_cuda(
            src.ptr, src.shape[0], src.shape[1], src.shape[1] * 3, _ptr(dev_affines), n, out_h, out_w,
            mean3, scale3, bool(swap_rb), dt.name, _ptr(out), src.launch_stream(stream, out, dev_affines), src.device,
        )  # fmt: skip
        return out

    img = _to_numpy(frame, name)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise InvalidInputError(f"{name}: frame must be a uint8 H x W x 3 BGR image, got {img.dtype} {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise InvalidInputError(f"{name}: frame is empty ({img.shape})")
    if backend == "reference":
        res = ref.resize_normalize_affine_ref(img, inv, out_h, out_w, mean3, scale3, swap_rb)
        return res.astype(dt)
    if img.strides[1:] != (3, 1) or img.strides[0] < 3 * img.shape[1]:
        img = np.ascontiguousarray(img)  # the kernel accepts any row pitch but packed pixels only
    out = np.empty((n, 3, out_h, out_w), dtype=dt)
    _C.resize_normalize_affine_cpu(img, inv, mean3, scale3, bool(swap_rb), out, int(num_threads))
    return out


def resize_normalize_batch(images, size, mean, scale, dtype=np.float32, backend="auto", num_threads=0, stream=None):
    """Resizes a float32 B x C x H x W batch and normalises it: ``(x - mean[c]) * scale[c]``.

    Bilinear with align_corners=False and no antialiasing, i.e.
    ``torch.nn.functional.interpolate(x, size, mode="bilinear", align_corners=False)``, fused with the
    normalisation (e.g. the hallucinator's output resized to the recogniser's 150 x 150 input).
    float16/float64 host inputs are converted to float32 first; CUDA inputs must be float32.
    """
    name = "resize_normalize_batch"
    on_cuda = _on_cuda(images)
    backend = _resolve_backend(backend, on_cuda, name)
    out_h, out_w = _out_size(size, name)
    dt = _out_dtype(dtype, name)

    if backend == "cuda":
        src = _CudaArray(images, name)
        if src.dtype != np.float32 or len(src.shape) != 4:
            raise InvalidInputError(f"{name}: images must be float32 B x C x H x W, got {src.dtype} {src.shape}")
        b, c, h, w = src.shape
        _check_batch_shape(src.shape, name)
        mean_c, scale_c = _per_channel(mean, c, "mean", name), _per_channel(scale, c, "scale", name)
        out = src.empty((b, c, out_h, out_w), dt)
        if b == 0:
            return out
        _C.resize_normalize_batch_cuda(
            src.ptr, b, c, h, w, c * h * w, h * w, w, out_h, out_w, mean_c, scale_c, dt.name, _ptr(out),
            src.launch_stream(stream, out), src.device,
        )  # fmt: skip
        return out

    x = _to_numpy(images, name)
    if x.ndim != 4 or x.dtype.kind != "f":
        raise InvalidInputError(f"{name}: images must be a floating B x C x H x W array, got {x.dtype} {x.shape}")
    _check_batch_shape(x.shape, name)
    mean_c = _per_channel(mean, x.shape[1], "mean", name)
    scale_c = _per_channel(scale, x.shape[1], "scale", name)
    if backend == "reference":
        return ref.resize_normalize_batch_ref(x, out_h, out_w, mean_c, scale_c).astype(dt)
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty((x.shape[0], x.shape[1], out_h, out_w), dtype=dt)
    _C.resize_normalize_batch_cpu(x, mean_c, scale_c, out, int(num_threads))
    return out


def _check_batch_shape(shape, name):
    if shape[1] < 1 or shape[2] < 1 or shape[3] < 1:
        raise InvalidInputError(f"{name}: images need C, H, W >= 1, got shape {tuple(shape)}")


def cosine_topk(queries, gallery, k, normalize=False, backend="auto", num_threads=0, stream=None):
    """The k most similar gallery rows of each query.

    Args:
        queries: B x D (or D) float32 embeddings; other float types are converted to float32.
        gallery: N x D, float32 or float16 storage (float64 is converted to float32); float32
            accumulation either way.
        k: results wanted per query (>= 1). When k > N, all N rows are returned (no padding).
        normalize: divide both sides by their L2 norms (rows are assumed unit-norm otherwise).
        On CUDA a float16 gallery is multiplied with float16 queries on tensor cores (float32
        accumulation): scores then carry a relative error of about 2^-11 |q||g|.
    Returns:
        (indices int64, similarities float32), each B x min(k, N) (or min(k, N) for 1-D queries),
        sorted by similarity descending, ties by index ascending.
    """
    name = "cosine_topk"
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidInputError(f"{name}: k must be an integer >= 1, got {k!r}")
    k = int(k)
    q_cuda, g_cuda = _on_cuda(queries), _on_cuda(gallery)
    if q_cuda != g_cuda:
        raise InvalidInputError(f"{name}: queries and gallery must both be on the host or both on a CUDA device")
    backend = _resolve_backend(backend, q_cuda, name)

    if backend == "cuda":
        q, g = _CudaArray(queries, name), _CudaArray(gallery, name)
        squeeze = len(q.shape) == 1
        _check_topk_shapes((1, *q.shape) if squeeze else q.shape, g.shape, name)
        if q.device != g.device:
            raise InvalidInputError(f"{name}: queries are on cuda:{q.device} but the gallery on cuda:{g.device}")
        if q.dtype.kind != "f" or g.dtype not in (np.float32, np.float16):
            raise InvalidInputError(
                f"{name}: CUDA inputs must be floating queries and a float32/float16 gallery, got {q.dtype}, {g.dtype}"
            )
        qt, gt = (torch.from_dlpack(x.obj) if x.framework == "cupy" else x.obj for x in (q, g))
        handle = q.launch_stream(stream, g.obj)
        with torch.cuda.stream(torch.cuda.ExternalStream(handle, device=q.device)):
            idx, sims = cosine_topk_gemm(qt.reshape(-1, qt.shape[-1]).float(), gt, k, bool(normalize))
        if q.framework == "cupy":
            import cupy

            idx, sims = cupy.from_dlpack(idx), cupy.from_dlpack(sims)
        return (idx[0], sims[0]) if squeeze else (idx, sims)

    q = _to_numpy(queries, name)
    g = _to_numpy(gallery, name)
    squeeze = q.ndim == 1
    if squeeze:
        q = q[None]
    _check_topk_shapes(q.shape, g.shape, name)
    if q.dtype.kind != "f" or g.dtype.kind != "f":
        raise InvalidInputError(f"{name}: queries and gallery must be floating point, got {q.dtype}, {g.dtype}")
    if backend == "reference":
        idx, sims = ref.cosine_topk_ref(q, g, k, normalize)
    else:
        q = np.ascontiguousarray(q, dtype=np.float32)
        g = np.ascontiguousarray(g, dtype=np.float16 if g.dtype == np.float16 else np.float32)
        idx, sims = _C.cosine_topk_cpu(q, g, k, bool(normalize), int(num_threads))
    return (idx[0], sims[0]) if squeeze else (idx, sims)


def _check_topk_shapes(q_shape, g_shape, name):
    if len(q_shape) != 2 or len(g_shape) != 2:
        raise InvalidInputError(f"{name}: queries must be B x D (or D) and gallery N x D, got {q_shape}, {g_shape}")
    if q_shape[1] != g_shape[1]:
        raise InvalidInputError(
            f"{name}: queries have D={q_shape[1]} but the gallery D={g_shape[1]}; embed both with the same model"
        )


# ---- cosine_topk on a GPU: a GEMM and a top-k --------------------------------------------------

_SCORE_TILE_BYTES = 256 << 20  # B x rows float32 scores held at once


def cosine_topk_gemm(queries, gallery, k, normalize=False, tile_rows=None):
    """cosine_topk with torch tensors on any device: the gallery is read once per batch of queries,
    tile by tile, as one matrix product per tile (cuBLAS on a GPU; a float16 gallery is multiplied
    on tensor cores with float32 accumulation and float32 scores), then a top-k over the tile and
    the best so far. Order is the C++ kernels': score descending, ties by lower index, exactly:
    each score is ranked by an int64 key (order-preserving bits of the float32 score, then the
    candidate's position, which among equal scores follows the gallery index).

    queries: B x D float32; gallery: N x D float32/float16; returns (int64 B x min(k, N), float32 B x min(k, N)).
    """
    b, n = queries.shape[0], gallery.shape[0]
    kk = min(int(k), n)
    device = queries.device
    if b == 0 or kk == 0:
        return (torch.empty((b, kk), dtype=torch.int64, device=device),
                torch.empty((b, kk), dtype=torch.float32, device=device))
    if normalize:
        norms = queries.norm(dim=1, keepdim=True)
        queries = torch.where(norms > 0, queries / norms.clamp_min(1e-30), torch.zeros_like(queries))
    rows = tile_rows or max(kk, _SCORE_TILE_BYTES // (4 * b))
    best_scores = torch.empty((b, 0), dtype=torch.float32, device=device)
    best_index = torch.empty((b, 0), dtype=torch.int64, device=device)
    for start in range(0, n, rows):
        tile = gallery[start : start + rows]
        scores = _tile_scores(queries, tile)
        if normalize:
            norms = tile.float().norm(dim=1)
            scores = torch.where(norms > 0, scores / norms.clamp_min(1e-30), torch.zeros_like(scores))
        index = torch.arange(start, start + len(tile), device=device).expand(b, -1)
        # Earlier winners first: among equal scores, position order is gallery-index order.
        scores, index = torch.cat([best_scores, scores], 1), torch.cat([best_index, index], 1)
        top = torch.topk(_rank_keys(scores), min(kk, scores.shape[1]), dim=1, sorted=True).indices
        best_scores, best_index = scores.gather(1, top), index.gather(1, top)
    return best_index, best_scores


def _tile_scores(queries, tile):
    """queries (float32) x tile^T -> float32 scores."""
    if tile.dtype == torch.float16 and tile.is_cuda:
        try:  # tensor cores, float32 accumulation and output (torch >= 2.8)
            return torch.mm(queries.half(), tile.t(), out_dtype=torch.float32)
        except (TypeError, RuntimeError):
            return queries @ tile.float().t()
    return queries @ tile.float().t()


def _rank_keys(scores):
    """int64 keys ordering (score descending, position ascending) as one descending sort."""
    bits = (scores + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into +0.0, as the C++ kernels compare
    ordered = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).to(torch.int64)  # float order as signed ints
    position = torch.arange(scores.shape[1], device=scores.device, dtype=torch.int64)
    return ordered * (1 << 32) + (0xFFFFFFFF - position)
