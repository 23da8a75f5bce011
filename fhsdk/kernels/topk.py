"""cosine_topk: top-k gallery rows per query, on the C++ kernel, on a GPU as a tiled GEMM + top-k, or in NumPy."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from fhsdk import kernels_reference as ref
from fhsdk.errors import InvalidInputError
from fhsdk.kernels.arguments import _resolve_backend, _to_numpy
from fhsdk.kernels.device_arrays import _CudaArray, _on_cuda
from fhsdk.kernels.native import _C


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
        return (
            torch.empty((b, kk), dtype=torch.int64, device=device),
            torch.empty((b, kk), dtype=torch.float32, device=device),
        )
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
