"""Argument checks and coercion shared by the ops: backends, sizes, per-channel values, dtypes, affines."""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from fhsdk.errors import BackendUnavailableError, InvalidInputError
from fhsdk.kernels.device_arrays import _is_torch
from fhsdk.kernels.native import _C, cuda_unavailable_reason

BACKENDS = ("auto", "cpu", "cuda", "reference")
# Per-call overhead matters: one 16 px face costs the kernel a few microseconds, so the checks below
# take fast paths for the common, already-valid arguments (NumPy arrays, ints, tuples of floats).
_F32, _F16 = np.dtype(np.float32), np.dtype(np.float16)
_SMALL_AFFINE_BATCH = 8  # up to this many matrices, plain Python floats beat NumPy's per-call overhead


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
            rows = [_invert_affine(*row, name=name) for row in rows]
        return np.array(rows, dtype=np.float32).reshape(-1, 2, 3)
    if not np.all(np.isfinite(m)):
        raise InvalidInputError(f"{name}: affines contain NaN or inf")
    if inverse_map:
        return np.ascontiguousarray(m, dtype=np.float32)
    inverse = _invert_affine(*m.reshape(-1, 6).T, name=name)  # the same formula on whole columns
    return np.stack(inverse, axis=1).astype(np.float32).reshape(-1, 2, 3)


def _invert_affine(a, b, tx, c, d, ty, name):
    """Inverse of the affine map [[a, b, tx], [c, d, ty]] (cv2.warpAffine's default is source -> output),
    as (a', b', tx', c', d', ty'). Plain arithmetic, so it takes Python floats (one matrix, no NumPy
    call overhead) and NumPy columns (a batch) alike."""
    det = a * d - b * c
    if np.any(abs(det) < 1e-12):  # a bool for one matrix, an array for a batch
        raise InvalidInputError(f"{name}: an affine matrix is singular (zero scale); check the landmarks")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return ia, ib, -(ia * tx + ib * ty), ic, id_, -(ic * tx + id_ * ty)
