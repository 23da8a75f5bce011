"""The gallery in memory: identities and their unit-norm embeddings, searched by cosine.

Names, embeddings and an optional FAISS index are one tuple, replaced in one assignment and never
changed in place, so a reader (a match, a stream in another thread) sees one version of all three.
"""

from __future__ import annotations

import logging
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fhsdk import open_set
from fhsdk.errors import GalleryError, InvalidInputError
from fhsdk.gallery import encryption, faiss_index
from fhsdk.gallery.faiss_index import INDEX_KINDS
from fhsdk.gallery.file_format import gallery_path, read_gallery, write_gallery
from fhsdk.kernels import cosine_topk

log = logging.getLogger(__name__)

__all__ = ["INDEX_KINDS", "Gallery", "Match"]


@dataclass
class Match:
    identity: str | None
    similarity: float


class Gallery:
    """Identities and their unit-norm embeddings (one row per enrolled image or per averaged identity)."""

    def __init__(self, dim: int = 128, recognizer_fingerprint: str = ""):
        self.dim = dim
        self.recognizer_fingerprint = recognizer_fingerprint
        # (names, embeddings, FAISS index or None), replaced as one tuple and never changed in place: a
        # reader (match, a stream in another thread) takes one snapshot and never sees names of one
        # version beside embeddings of another
        self._state: tuple[list[str], np.ndarray, object] = ([], np.zeros((0, dim), dtype=np.float32), None)
        self.index_kind: str | None = None

    def __len__(self) -> int:
        return len(self._state[0])

    @property
    def _names(self) -> list[str]:
        return self._state[0]

    @property
    def _embeddings(self) -> np.ndarray:
        return self._state[1]

    @property
    def _index(self):
        return self._state[2]

    def _replace(self, names: list[str], embeddings: np.ndarray, index=None) -> None:
        """Swap in new rows (and index) in one assignment."""
        self._state = (names, embeddings, index)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def identities(self) -> list[str]:
        return sorted(set(self._names))

    @property
    def embeddings(self) -> np.ndarray:
        return self._embeddings

    def _rows(self, array, what: str) -> np.ndarray:
        """`array` as a contiguous N x dim float32 matrix (one D-vector is one row)."""
        try:
            rows = np.asarray(array, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"{what} must be an array of numbers, got {type(array).__name__}") from error
        if rows.ndim == 1:
            rows = rows[None]
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise InvalidInputError(f"{what} must have shape ({self.dim},) or (N, {self.dim}), got {np.shape(array)}")
        return np.ascontiguousarray(rows)

    def add(self, name: str, embeddings: np.ndarray, average: bool = False) -> None:
        """Add one or more embeddings for `name`; `average=True` keeps their normalised mean only."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError("an identity name must be a non-empty string")
        if "\0" in name:  # NumPy's unicode arrays would drop trailing NULs on save
            raise InvalidInputError(f"identity name {name!r} contains a NUL character: remove it")
        vectors = self._rows(embeddings, f"the embeddings for '{name}'")
        if len(vectors) == 0:
            raise InvalidInputError(f"no embeddings given for '{name}'")
        if not np.isfinite(vectors).all():
            raise InvalidInputError(f"the embeddings for '{name}' contain NaN or infinite values")
        if average:
            vectors = vectors.mean(axis=0, keepdims=True)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms < 1e-12).any():
            raise InvalidInputError(f"an embedding for '{name}' is all zeros (or averages to zero): embed a real face")
        vectors = (vectors / norms).astype(np.float32)
        names, embeddings, index = self._state
        if index is not None:  # rows are only appended: a reader of the old snapshot still finds its rows
            index.add(vectors)
        self._replace(names + [name] * len(vectors), np.concatenate([embeddings, vectors]), index)

    def remove(self, name: str) -> int:
        """Remove every row of `name`; returns how many. Names, embeddings and index change together."""
        names, embeddings, index = self._state
        keep = np.array([n != name for n in names], dtype=bool)
        removed = int((~keep).sum())
        if removed:
            if index is not None:
                log.warning("the gallery's %s index was dropped on remove(); call build_index() again", self.index_kind)
                self.index_kind = None
            self._replace([n for n in names if n != name], np.ascontiguousarray(embeddings[keep]))
        return removed

    def build_index(
        self,
        kind: str = "faiss-flat",
        *,
        hnsw_m: int = 32,
        ef_search: int = 64,
        ivf_lists: int | None = None,
        nprobe: int = 16,
    ) -> None:
        """Search with a FAISS index from now on (needs `pip install "fhsdk[faiss]"`).

        'faiss-flat' is exact (same top-k as the default search); 'faiss-hnsw' (graph, `hnsw_m` links
        per node, `ef_search` candidates per query) and 'faiss-ivf' (`ivf_lists` k-means cells, default
        4 sqrt(N), `nprobe` searched per query) are approximate and pay off on very large galleries.
        add() extends the index; remove() drops it. The index is not saved with the gallery.
        """
        names, embeddings, _ = self._state
        self._replace(names, embeddings, faiss_index.build_index(kind, embeddings, hnsw_m=hnsw_m, ivf_lists=ivf_lists))
        self.index_kind = kind
        self.tune_index(
            ef_search=ef_search if kind == "faiss-hnsw" else None, nprobe=nprobe if kind == "faiss-ivf" else None
        )

    def tune_index(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Set how hard an approximate index searches, without rebuilding it: more is slower and finds more."""
        for value, kind in ((ef_search, "faiss-hnsw"), (nprobe, "faiss-ivf")):
            if value is not None and self.index_kind != kind:
                raise InvalidInputError(
                    f"{'ef_search' if kind == 'faiss-hnsw' else 'nprobe'} tunes a '{kind}' index, "
                    f"but this gallery's index is {self.index_kind}: build_index('{kind}') first"
                )
        if ef_search is not None:
            self._index.hnsw.efSearch = int(ef_search)
        if nprobe is not None:
            self._index.nprobe = int(nprobe)

    def drop_index(self) -> None:
        """Go back to the default exact search (fhsdk.kernels.cosine_topk)."""
        names, embeddings, _ = self._state
        self._replace(names, embeddings)
        self.index_kind = None

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Top-k gallery rows per query: (indices B x k', similarities B x k'), k' = min(k, len).

        Exact (fhsdk.kernels.cosine_topk) unless build_index() was called. An approximate index may
        find fewer than k' rows for a query: those slots hold index -1 and similarity -inf.
        """
        return self._search(self._state, queries, k)

    def _search(self, state, queries, k):
        _, embeddings, index = state
        queries = self._rows(queries, "queries")
        if index is None or len(embeddings) == 0:
            return cosine_topk(queries, embeddings, k)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
        similarities, indices = index.search(queries, min(int(k), len(embeddings)))
        similarities[indices < 0] = -np.inf
        return indices.astype(np.int64), similarities.astype(np.float32)

    def match(self, queries: np.ndarray, threshold: float) -> list[Match]:
        """Best identity per query, or None where the best similarity is below the threshold."""
        queries = self._rows(queries, "queries")
        state = self._state  # one snapshot: names and rows of the same version
        names = state[0]
        if len(names) == 0 or len(queries) == 0:
            return [Match(None, float("nan")) for _ in range(len(queries))]
        indices, similarities = self._search(state, queries, 1)
        return [
            Match(names[int(i)] if s >= threshold else None, float(s))
            for i, s in zip(indices[:, 0], similarities[:, 0])
        ]

    def suggest_threshold(self, fpir: float = 0.01) -> float:
        """The cosine threshold at which about `fpir` of the faces of people not enrolled are named as
        someone, for this gallery's number of identities (open-set identification, fhsdk.open_set): the
        pair-level default (Pipeline's DEFAULT_THRESHOLD) names strangers far more often in a large gallery."""
        return open_set.suggest_threshold(max(1, len(self.identities)), fpir)

    @staticmethod
    def generate_key() -> str:
        """A new random AES-256 key as url-safe base64 text, for save(key=...) and load(key=...).

        Keep it apart from the gallery (a secrets manager, or an environment variable such as
        FHSDK_GALLERY_KEY for `fhsdk enroll/run --gallery-key-env FHSDK_GALLERY_KEY`).
        """
        return encryption.generate_key()

    def save(self, path: str | os.PathLike, key: str | bytes | None = None) -> Path:
        """Write the gallery atomically to `path` (.npz appended if missing); encrypted when `key` is given."""
        names, embeddings, _ = self._state  # one snapshot, even while another thread enrols
        return write_gallery(gallery_path(path), names, embeddings, self.recognizer_fingerprint, key)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        recognizer_fingerprint: str | None = None,
        key: str | bytes | None = None,
        allow_unverified: bool = False,
    ) -> Gallery:
        """Read and verify a gallery; `key` is needed for (and only for) an encrypted one.

        A format-1 file has no checksum, so nothing tells it from a newer gallery rewritten as format 1
        to get past the check: it is refused unless `allow_unverified=True` (then save it to upgrade it).
        """
        names, embeddings, fingerprint = read_gallery(path, key, allow_unverified)
        if recognizer_fingerprint is not None and fingerprint != recognizer_fingerprint:
            raise GalleryError(
                f"{path} was made with another recogniser (fingerprint {fingerprint}, this pipeline's is "
                f"{recognizer_fingerprint}): its embeddings cannot be compared; re-enrol the people with this pipeline"
            )
        gallery = cls(dim=embeddings.shape[1], recognizer_fingerprint=fingerprint)
        gallery._replace(names, embeddings)
        return gallery
