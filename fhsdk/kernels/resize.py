"""resize_normalize_affine and resize_normalize_batch: fused crop/resize/normalise, dispatched to C++, CUDA or NumPy."""

from __future__ import annotations

import numpy as np

from fhsdk import kernels_reference as ref
from fhsdk.errors import InvalidInputError
from fhsdk.kernels.arguments import _host_affines, _out_dtype, _out_size, _per_channel, _resolve_backend, _to_numpy
from fhsdk.kernels.device_arrays import _CudaArray, _on_cuda, _ptr
from fhsdk.kernels.native import _C


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
