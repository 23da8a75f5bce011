"""Plain NumPy references of the native kernels (fhsdk/kernels.py, csrc/ops/).

Slow and simple on purpose: float64 arithmetic, written to be read against the op's definition.
Tests compare every native path against these; `backend="reference"` in fhsdk.kernels uses them too.
"""

from __future__ import annotations

import numpy as np


def resize_normalize_affine_ref(frame, inv_affines, out_h, out_w, mean, scale, swap_rb=True):
    """Form (a). `inv_affines` (N x 2 x 3) map OUTPUT pixel coordinates to frame coordinates.

    Bilinear sampling with pixel centres on integer coordinates; neighbours outside the frame read
    as 0 (cv2.BORDER_CONSTANT). Returns float64 N x 3 x out_h x out_w.
    """
    frame = np.asarray(frame, dtype=np.float64)
    height, width = frame.shape[:2]
    m = np.asarray(inv_affines, dtype=np.float64).reshape(-1, 2, 3)
    ys, xs = np.meshgrid(np.arange(out_h, dtype=np.float64), np.arange(out_w, dtype=np.float64), indexing="ij")
    sx = m[:, 0, 0, None, None] * xs + m[:, 0, 1, None, None] * ys + m[:, 0, 2, None, None]
    sy = m[:, 1, 0, None, None] * xs + m[:, 1, 1, None, None] * ys + m[:, 1, 2, None, None]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros(sx.shape + (3,), dtype=np.float64)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xx, yy = x0 + dx, y0 + dy
            inside = (xx >= 0) & (xx < width) & (yy >= 0) & (yy < height)
            pix = frame[np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]
            out += np.where(inside[..., None], pix, 0.0) * (wx * wy)[..., None]
    if swap_rb:
        out = out[..., ::-1]
    out = (out - np.asarray(mean, np.float64)) * np.asarray(scale, np.float64)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _taps(size_in, size_out):
    """Source indices and weights of torch's bilinear interpolate, align_corners=False."""
    src = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, size_in - 1)
    w1 = src - i0
    return i0, i1, 1.0 - w1, w1


def resize_normalize_batch_ref(images, out_h, out_w, mean, scale):
    """Form (b): B x C x H x W -> B x C x out_h x out_w (bilinear, align_corners=False), then
    (x - mean[c]) * scale[c]. Returns float64."""
    x = np.asarray(images, dtype=np.float64)
    y0, y1, wy0, wy1 = _taps(x.shape[2], out_h)
    x0, x1, wx0, wx1 = _taps(x.shape[3], out_w)
    rows = x[:, :, y0, :] * wy0[:, None] + x[:, :, y1, :] * wy1[:, None]
    out = rows[..., x0] * wx0 + rows[..., x1] * wx1
    mean = np.asarray(mean, np.float64).reshape(1, -1, 1, 1)
    scale = np.asarray(scale, np.float64).reshape(1, -1, 1, 1)
    return (out - mean) * scale


def cosine_similarities_ref(queries, gallery, normalize=False):
    """B x N similarity matrix in float64 (zero rows score 0 when normalising)."""
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    if normalize:
        qn, gn = np.linalg.norm(q, axis=1, keepdims=True), np.linalg.norm(g, axis=1, keepdims=True)
        q = np.divide(q, qn, out=np.zeros_like(q), where=qn > 0)
        g = np.divide(g, gn, out=np.zeros_like(g), where=gn > 0)
    return q @ g.T


def cosine_topk_ref(queries, gallery, k, normalize=False):
    """Top-min(k, N) per query, sorted by similarity descending then index ascending.
    Returns (int64 indices, float32 similarities), each B x min(k, N)."""
    sims = cosine_similarities_ref(queries, gallery, normalize)
    kk = min(int(k), sims.shape[1])
    idx = np.empty((sims.shape[0], kk), dtype=np.int64)
    for b in range(sims.shape[0]):
        order = np.lexsort((np.arange(sims.shape[1]), -sims[b]))  # last key is primary
        idx[b] = order[:kk]
    return idx, np.take_along_axis(sims, idx, axis=1).astype(np.float32)
