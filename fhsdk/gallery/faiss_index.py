"""FAISS indexes for very large galleries (the `faiss` extra): exact flat, HNSW and IVF."""

from __future__ import annotations

import math

import numpy as np

from fhsdk.errors import BackendUnavailableError, InvalidInputError

INDEX_KINDS = ("faiss-flat", "faiss-hnsw", "faiss-ivf")


def build_index(kind: str, embeddings: np.ndarray, *, hnsw_m: int = 32, ivf_lists: int | None = None):
    """A FAISS inner-product index of `kind` holding `embeddings` (N x dim float32, unit rows)."""
    if kind not in INDEX_KINDS:
        raise InvalidInputError(f"unknown index '{kind}': use one of {', '.join(INDEX_KINDS)}")
    faiss = _import_faiss()
    dim = embeddings.shape[1]
    if kind == "faiss-flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
    else:
        lists = int(ivf_lists or max(1, round(4 * math.sqrt(len(embeddings)))))
        if len(embeddings) < lists:
            raise InvalidInputError(
                f"a faiss-ivf index of {lists} lists needs at least {lists} embeddings to "
                f"train on; the gallery has {len(embeddings)}: use 'faiss-flat' or fewer ivf_lists"
            )
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        # k-means needs tens of rows per list, not millions: a sample keeps the training quick
        sample = np.random.default_rng(0).permutation(len(embeddings))[: 64 * lists]
        index.train(embeddings[np.sort(sample)])
    index.add(embeddings)
    return index


def _import_faiss():
    try:
        import faiss
    except ImportError as error:
        raise BackendUnavailableError('FAISS indexes need the faiss-cpu package: pip install "fhsdk[faiss]"') from error
    return faiss
