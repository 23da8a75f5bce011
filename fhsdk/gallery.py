"""The gallery: enrolled identities' embeddings, searched by cosine, saved atomically.

A gallery file holds biometric templates: treat it as personal data. It is a NumPy .npz written
without pickle (names as their UTF-8 bytes end to end plus offsets, so one long name does not widen
every row) and read with allow_pickle=False, stamped with a format
version, the fingerprint of the recogniser that made the embeddings, and a SHA-256 checksum over
every stored array. Loading checks all of it: a damaged, foreign or altered file, or one made by
another recogniser, is refused with a GalleryError. The checksum catches corruption and careless
edits; only a key (`save(path, key=...)`, AES-256-GCM from the `cryptography` package) also makes
the file confidential and tamper-proof against someone who recomputes the checksum.

Saves write a temporary file beside the gallery, fsync it, rename it over the old one and fsync the
folder, so a crash or kill at any moment leaves either the old or the new gallery, whole. Saves to
one gallery take a file lock, which also lets each save sweep temporary files of killed saves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import math
import numbers
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fhsdk import open_set
from fhsdk.errors import BackendUnavailableError, GalleryError, InvalidInputError, OutputError
from fhsdk.kernels import cosine_topk

try:
    import fcntl
except ImportError:  # Windows: saves stay atomic; only the sweep of killed saves' temp files is skipped
    fcntl = None

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 3: names variable-length (UTF-8 + offsets); 2 added the checksum; 1 (none) only on request
_FIELDS = {  # the arrays of each format
    1: {"format_version", "recognizer_fingerprint", "names", "embeddings"},
    2: {"format_version", "recognizer_fingerprint", "names", "embeddings", "checksum"},
    3: {"format_version", "recognizer_fingerprint", "names_utf8", "name_offsets", "embeddings", "checksum"},
}
_ENCRYPTED_MAGIC = b"FHSDK-GALLERY-AES256GCM-1\n"
_NONCE_BYTES = 12
_MAX_ENCRYPTED_BYTES = 2**31 - 1  # cryptography's AESGCM takes at most this much per message
_TEMP_MARK = ".fhsdk-save-"  # temp files are ".<gallery name>.fhsdk-save-<random>.tmp"
INDEX_KINDS = ("faiss-flat", "faiss-hnsw", "faiss-ivf")


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

    def build_index(self, kind: str = "faiss-flat", *, hnsw_m: int = 32, ef_search: int = 64,
                    ivf_lists: int | None = None, nprobe: int = 16) -> None:
        """Search with a FAISS index from now on (needs `pip install "fhsdk[faiss]"`).

        'faiss-flat' is exact (same top-k as the default search); 'faiss-hnsw' (graph, `hnsw_m` links
        per node, `ef_search` candidates per query) and 'faiss-ivf' (`ivf_lists` k-means cells, default
        4 sqrt(N), `nprobe` searched per query) are approximate and pay off on very large galleries.
        add() extends the index; remove() drops it. The index is not saved with the gallery.
        """
        if kind not in INDEX_KINDS:
            raise InvalidInputError(f"unknown index '{kind}': use one of {', '.join(INDEX_KINDS)}")
        faiss = _import_faiss()
        if kind == "faiss-flat":
            index = faiss.IndexFlatIP(self.dim)
        elif kind == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(self.dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        else:
            lists = int(ivf_lists or max(1, round(4 * math.sqrt(len(self)))))
            if len(self) < lists:
                raise InvalidInputError(f"a faiss-ivf index of {lists} lists needs at least {lists} embeddings to "
                                        f"train on; the gallery has {len(self)}: use 'faiss-flat' or fewer ivf_lists")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, lists, faiss.METRIC_INNER_PRODUCT)
            # k-means needs tens of rows per list, not millions: a sample keeps the training quick
            sample = np.random.default_rng(0).permutation(len(self))[: 64 * lists]
            index.train(self._embeddings[np.sort(sample)])
        names, embeddings, _ = self._state
        index.add(embeddings)
        self._replace(names, embeddings, index)
        self.index_kind = kind
        self.tune_index(ef_search=ef_search if kind == "faiss-hnsw" else None,
                        nprobe=nprobe if kind == "faiss-ivf" else None)

    def tune_index(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Set how hard an approximate index searches, without rebuilding it: more is slower and finds more."""
        for value, kind in ((ef_search, "faiss-hnsw"), (nprobe, "faiss-ivf")):
            if value is not None and self.index_kind != kind:
                raise InvalidInputError(f"{'ef_search' if kind == 'faiss-hnsw' else 'nprobe'} tunes a '{kind}' index, "
                                        f"but this gallery's index is {self.index_kind}: build_index('{kind}') first")
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
        return base64.urlsafe_b64encode(_aead_class().generate_key(bit_length=256)).decode("ascii")

    def save(self, path: str | os.PathLike, key: str | bytes | None = None) -> Path:
        """Write the gallery atomically to `path` (.npz appended if missing); encrypted when `key` is given."""
        path = gallery_path(path)
        names, embeddings, _ = self._state  # one snapshot, even while another thread enrols
        encoded = [name.encode("utf-8") for name in names]
        arrays = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "recognizer_fingerprint": np.array(self.recognizer_fingerprint, dtype=np.str_),
            "names_utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            "name_offsets": np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64),
            "embeddings": embeddings,
        }
        arrays["checksum"] = np.array(_checksum(arrays))
        cipher = _cipher(key) if key is not None else None  # a bad key fails before anything is written
        try:
            return self._write(path, arrays, cipher)
        except OSError as error:  # a missing, read-only or full folder, a name too long
            raise OutputError.writing("the gallery", path, error) from error

    def _write(self, path: Path, arrays: dict, cipher) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _save_lock(path) as locked:
            if locked:  # no other save of this gallery is running: any temp file left is a killed save's
                _sweep_temp_files(path)
            descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}{_TEMP_MARK}", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    if cipher is None:
                        np.savez(handle, **arrays)
                    else:
                        buffer = io.BytesIO()
                        np.savez(buffer, **arrays)
                        handle.write(_encrypt(cipher, buffer.getbuffer()))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_folder(path.parent)  # makes the rename itself durable
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, recognizer_fingerprint: str | None = None,
             key: str | bytes | None = None, allow_unverified: bool = False) -> "Gallery":
        """Read and verify a gallery; `key` is needed for (and only for) an encrypted one.

        A format-1 file has no checksum, so nothing tells it from a newer gallery rewritten as format 1
        to get past the check: it is refused unless `allow_unverified=True` (then save it to upgrade it).
        """
        path = Path(path)
        try:
            found = path.is_file()
        except OSError:  # a name too long, say
            found = False
        if not found:
            raise GalleryError(f"no gallery file at {path}: enrol people first (`fhsdk enroll`)")
        arrays = _read_arrays(path, key)
        damaged = f"{path} is damaged or not an fhsdk gallery"
        try:
            version = int(arrays["format_version"])
            fingerprint = str(arrays["recognizer_fingerprint"].item())
            embeddings = np.ascontiguousarray(arrays["embeddings"])
            stored_checksum = str(arrays["checksum"].item()) if "checksum" in arrays else None
        except (TypeError, ValueError, IndexError) as error:
            raise GalleryError(f"{damaged} ({error}): restore it from a backup or re-enrol") from error
        if version > FORMAT_VERSION or version < 1:
            raise GalleryError(f"{path} has gallery format {version}; this fhsdk reads formats 1 to {FORMAT_VERSION}: "
                               "upgrade fhsdk (pip install -U fhsdk) or re-enrol")
        if set(arrays) != _FIELDS[version] and not (version >= 2 and set(arrays) == _FIELDS[version] - {"checksum"}):
            raise GalleryError(f"{damaged} (format {version} with the arrays {', '.join(sorted(arrays))}): "
                               "restore it from a backup or re-enrol")
        if stored_checksum is not None:
            if stored_checksum != _checksum({k: v for k, v in arrays.items() if k != "checksum"}):
                raise GalleryError(f"{path} fails its SHA-256 checksum: it was damaged or altered after it was saved; "
                                   "restore it from a backup or re-enrol")
        elif version >= 2:
            raise GalleryError(f"{path} (format {version}) has lost its checksum: it was altered after it was saved; "
                               "restore it from a backup or re-enrol")
        elif not allow_unverified:
            raise GalleryError(f"{path} is a format-1 gallery, which has no checksum: it cannot be verified (a newer "
                               "gallery rewritten as format 1 would look the same). If you trust it, load it with "
                               "Gallery.load(path, allow_unverified=True) and save it again to add a checksum; if not, restore it "
                               "from a backup or re-enrol")
        else:
            log.warning("%s is a format-1 gallery without a checksum, loaded unverified; save it again to add one",
                        path)
        names = _names(arrays, version, damaged)
        if embeddings.dtype != np.float32 or embeddings.ndim != 2 or len(names) != len(embeddings):
            raise GalleryError(f"{path} is inconsistent ({len(names)} names, embeddings {embeddings.dtype} "
                               f"{embeddings.shape}): restore it from a backup or re-enrol")
        if recognizer_fingerprint is not None and fingerprint != recognizer_fingerprint:
            raise GalleryError(
                f"{path} was made with another recogniser (fingerprint {fingerprint}, this pipeline's is "
                f"{recognizer_fingerprint}): its embeddings cannot be compared; re-enrol the people with this pipeline"
            )
        gallery = cls(dim=embeddings.shape[1], recognizer_fingerprint=fingerprint)
        gallery._replace(names, embeddings)
        return gallery


def _names(arrays: dict[str, np.ndarray], version: int, damaged: str) -> list[str]:
    """The identity names of a verified file: a unicode array (formats 1, 2) or UTF-8 bytes + offsets (3)."""
    try:
        if version < 3:
            if arrays["names"].ndim != 1:
                raise ValueError(f"names of shape {arrays['names'].shape}")
            return [str(n) for n in arrays["names"]]
        data, offsets = arrays["names_utf8"], arrays["name_offsets"]
        if (data.dtype != np.uint8 or data.ndim != 1 or offsets.dtype != np.int64 or offsets.ndim != 1
                or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any()):
            raise ValueError("names and their offsets disagree")
        text = data.tobytes()
        return [text[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except (TypeError, ValueError, IndexError, UnicodeDecodeError) as error:
        raise GalleryError(f"{damaged} ({error}): restore it from a backup or re-enrol") from error


def check_writable(path: str | os.PathLike) -> Path:
    """Where save(path) will write, after checking that it can (a temp file is made there and removed);
    raises OutputError now rather than after an hour of enrolment."""
    path = gallery_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}{_TEMP_MARK}", suffix=".tmp", dir=path.parent)
        os.close(descriptor)
        os.unlink(tmp)
    except OSError as error:
        raise OutputError.writing("the gallery", path, error) from error
    return path


def gallery_path(path: str | os.PathLike) -> Path:
    """Where save(path) writes: the path with '.npz' appended unless it already ends so."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every stored array (key, dtype, shape and bytes, in key order), hex."""
    digest = hashlib.sha256(b"fhsdk-gallery\0")
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.reshape(-1).view(np.uint8))  # a view: no copy of a large gallery
    return digest.hexdigest()


def _read_arrays(path: Path, key) -> dict[str, np.ndarray]:
    """The arrays of a gallery file, decrypted if it is encrypted; never unpickles anything."""
    try:
        return _read_arrays_from(path, key)
    except OSError as error:  # permission denied, an I/O error, ...
        raise GalleryError(f"cannot read gallery {path}: {error.strerror or error} (errno {error.errno}); check the "
                           "file's permissions and the disk") from error


def _read_arrays_from(path: Path, key) -> dict[str, np.ndarray]:
    what_to_do = "restore it from a backup or re-enrol"
    with open(path, "rb") as handle:
        head = handle.read(len(_ENCRYPTED_MAGIC))
        if not head:
            raise GalleryError(f"{path} is empty (0 bytes), probably from an interrupted copy: {what_to_do}")
        if head == _ENCRYPTED_MAGIC:
            if key is None:
                raise GalleryError(f"{path} is encrypted: give its key (Gallery.load(path, key=...), "
                                   "Pipeline(gallery_key=...) or `fhsdk ... --gallery-key-env NAME`)")
            source = io.BytesIO(_decrypt(_cipher(key), handle.read(), path))
        elif key is not None and head.startswith(b"PK"):  # refuse rather than trust an unauthenticated file
            raise GalleryError(f"{path} is not encrypted but a key was given: load it without a key, "
                               "or save it again with the key to encrypt it")
        elif not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            raise GalleryError(f"{path} is not an fhsdk gallery (neither a NumPy .npz archive nor an encrypted "
                               f"gallery): check the path, or {what_to_do}")
        else:
            handle.seek(0)
            source = handle
        try:
            with np.load(source, allow_pickle=False) as data:
                found = set(data.files)
                if not any(found <= fields for fields in _FIELDS.values()) or "format_version" not in found:
                    raise GalleryError(f"{path} is a NumPy archive but not an fhsdk gallery (it holds "
                                       f"{', '.join(sorted(found)) or 'nothing'}): check the path, or {what_to_do}")
                return {name: data[name] for name in data.files}
        except GalleryError:
            raise
        except Exception as error:  # zip, CRC, header and pickle refusals all mean the same thing here
            raise GalleryError(f"{path} is damaged or not an fhsdk gallery ({type(error).__name__}: {error}): "
                               f"{what_to_do}") from error


@contextmanager
def _save_lock(path: Path):
    """Holds an exclusive lock on '.<name>.lock' beside the gallery; the OS releases it if we are killed."""
    if fcntl is None:
        yield False
        return
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield True


def _sweep_temp_files(path: Path) -> None:
    prefix = f".{path.name}{_TEMP_MARK}"
    for entry in path.parent.iterdir():
        if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
            log.info("removing %s, left by an interrupted save", entry)
            entry.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder for fsync; NTFS journals the rename
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _aead_class():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as error:
        raise BackendUnavailableError(
            'encrypted galleries need the cryptography package: pip install "fhsdk[crypto]"') from error
    return AESGCM


def _cipher(key: str | bytes):
    """An AES-256-GCM cipher for a key from Gallery.generate_key() (base64 text) or 32 raw bytes."""
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        raw = bytes(key)
    else:
        try:
            raw = base64.b64decode(key, altchars=b"-_", validate=True)
        except (TypeError, ValueError, binascii.Error):
            raw = b""
    if len(raw) != 32:
        raise InvalidInputError("a gallery key is 32 random bytes, or their url-safe base64 text (44 characters) "
                                "as Gallery.generate_key() returns it: check the key or the environment variable")
    return _aead_class()(raw)


def _encrypt(cipher, plaintext) -> bytes:
    if len(plaintext) > _MAX_ENCRYPTED_BYTES:
        raise GalleryError(f"the gallery is {len(plaintext) / 2**30:.1f} GiB, too large to encrypt in one piece "
                           "(2 GiB, about 4 million 128-D embeddings): save it without a key on an encrypted volume")
    nonce = os.urandom(_NONCE_BYTES)  # random 96-bit nonces: safe for billions of saves under one key
    return _ENCRYPTED_MAGIC + nonce + cipher.encrypt(nonce, plaintext, _ENCRYPTED_MAGIC)


def _decrypt(cipher, body: bytes, path: Path) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return cipher.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], _ENCRYPTED_MAGIC)
    except (InvalidTag, ValueError) as error:
        raise GalleryError(f"{path} could not be decrypted: the key is wrong, or the file was damaged or altered "
                           "after it was saved; use the key it was saved with, or restore it from a backup") from error


def _import_faiss():
    try:
        import faiss
    except ImportError as error:
        raise BackendUnavailableError('FAISS indexes need the faiss-cpu package: pip install "fhsdk[faiss]"') from error
    return faiss
