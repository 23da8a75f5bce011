"""The gallery: enrolled identities' embeddings, searched by cosine, saved atomically.

A gallery file holds biometric templates: treat it as personal data. It is a NumPy .npz written
without pickle (names as a unicode array), stamped with a format version and the fingerprint of the
recogniser that made the embeddings; loading a gallery made by another recogniser is refused.
Saves go to a temporary file that is fsynced and renamed over the old one, so a crash mid-save
leaves the previous gallery intact.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fhsdk.errors import GalleryError, InvalidInputError

FORMAT_VERSION = 1


@dataclass
class Match:
    identity: str | None
    similarity: float


class Gallery:
    """Identities and their unit-norm embeddings (one row per enrolled image or per averaged identity)."""

    def __init__(self, dim: int = 128, recognizer_fingerprint: str = ""):
        self.dim = dim
        self.recognizer_fingerprint = recognizer_fingerprint
        self._names: list[str] = []
        self._embeddings = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def identities(self) -> list[str]:
        return sorted(set(self._names))

    @property
    def embeddings(self) -> np.ndarray:
        return self._embeddings

    def add(self, name: str, embeddings: np.ndarray, average: bool = False) -> None:
        """Add one or more embeddings for `name`; `average=True` keeps their normalised mean only."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError("an identity name must be a non-empty string")
        vectors = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim) if np.size(embeddings) else None
        if vectors is None or vectors.shape[1] != self.dim:
            raise InvalidInputError(f"expected embeddings of dimension {self.dim} for '{name}'")
        if not np.isfinite(vectors).all():
            raise InvalidInputError(f"the embeddings for '{name}' contain NaN or infinite values")
        if average:
            vectors = vectors.mean(axis=0, keepdims=True)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self._names.extend([name] * len(vectors))
        self._embeddings = np.concatenate([self._embeddings, vectors.astype(np.float32)])

    def remove(self, name: str) -> int:
        keep = np.array([n != name for n in self._names], dtype=bool)
        removed = int((~keep).sum())
        self._names = [n for n in self._names if n != name]
        self._embeddings = self._embeddings[keep]
        return removed

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Top-k gallery rows per query: (indices B x k', similarities B x k'), k' = min(k, len)."""
        from fhsdk.kernels import cosine_topk

        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, self.dim))
        return cosine_topk(queries, self._embeddings, k)

    def match(self, queries: np.ndarray, threshold: float) -> list[Match]:
        """Best identity per query, or None where the best similarity is below the threshold."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if len(self) == 0 or len(queries) == 0:
            return [Match(None, float("nan")) for _ in range(len(queries))]
        indices, similarities = self.search(queries, 1)
        return [
            Match(self._names[int(i)] if s >= threshold else None, float(s))
            for i, s in zip(indices[:, 0], similarities[:, 0])
        ]

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                np.savez(
                    handle,
                    format_version=np.array(FORMAT_VERSION),
                    recognizer_fingerprint=np.array(self.recognizer_fingerprint),
                    names=np.array(self._names, dtype=np.str_),
                    embeddings=self._embeddings,
                )
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, recognizer_fingerprint: str | None = None) -> "Gallery":
        path = Path(path)
        if not path.is_file():
            raise GalleryError(f"no gallery file at {path}: enrol people first (`fhsdk enroll`)")
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                fingerprint = str(data["recognizer_fingerprint"])
                names = [str(n) for n in data["names"]]
                embeddings = np.asarray(data["embeddings"], dtype=np.float32)
        except Exception as error:  # zip, key and value errors all mean the same thing here
            raise GalleryError(f"{path} is not a readable fhsdk gallery ({error}): restore it from a backup or re-enrol") from error
        if version != FORMAT_VERSION:
            raise GalleryError(f"{path} has gallery format {version}; this fhsdk reads format {FORMAT_VERSION}")
        if embeddings.ndim != 2 or len(names) != len(embeddings):
            raise GalleryError(f"{path} is inconsistent ({len(names)} names, embeddings {embeddings.shape}): re-enrol")
        if recognizer_fingerprint is not None and fingerprint != recognizer_fingerprint:
            raise GalleryError(
                f"{path} was made with another recogniser (fingerprint {fingerprint}, this pipeline's is "
                f"{recognizer_fingerprint}): its embeddings cannot be compared; re-enrol the people with this pipeline"
            )
        gallery = cls(dim=embeddings.shape[1], recognizer_fingerprint=fingerprint)
        gallery._names, gallery._embeddings = names, embeddings
        return gallery
