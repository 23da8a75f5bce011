"""The gallery file: a NumPy .npz (or its AES-256-GCM encryption) with a format version, the recogniser's
fingerprint and a SHA-256 checksum over every array; written atomically under a lock, read without
unpickling anything and verified before use.

Formats: 3 stores names as UTF-8 bytes end to end plus offsets (one long name does not widen every row);
2 added the checksum; 1 (none) is read only on request (`allow_unverified`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fhsdk.errors import GalleryError, OutputError
from fhsdk.files import atomic_path, temp_prefix
from fhsdk.gallery import encryption

try:
    import fcntl
except ImportError:  # Windows: saves stay atomic; only the sweep of killed saves' temp files is skipped
    fcntl = None

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
_FIELDS = {  # the arrays of each format
    1: {"format_version", "recognizer_fingerprint", "names", "embeddings"},
    2: {"format_version", "recognizer_fingerprint", "names", "embeddings", "checksum"},
    3: {"format_version", "recognizer_fingerprint", "names_utf8", "name_offsets", "embeddings", "checksum"},
}


def write_gallery(path: Path, names: list[str], embeddings: np.ndarray, fingerprint: str, key=None) -> Path:
    """Write one snapshot of a gallery to `path`, encrypted when `key` is given."""
    encoded = [name.encode("utf-8") for name in names]
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "recognizer_fingerprint": np.array(fingerprint, dtype=np.str_),
        "names_utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "name_offsets": np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64),
        "embeddings": embeddings,
    }
    arrays["checksum"] = np.array(checksum(arrays))
    cipher = encryption.cipher(key) if key is not None else None  # a bad key fails before anything is written
    try:
        with _save_lock(path) as locked:
            if locked:  # no other save of this gallery is running: any temp file left is a killed save's
                _sweep_temp_files(path)
            with atomic_path(path) as tmp:
                if cipher is None:
                    np.savez(tmp, **arrays)
                else:
                    buffer = io.BytesIO()
                    np.savez(buffer, **arrays)
                    tmp.write_bytes(encryption.encrypt(cipher, buffer.getbuffer()))
    except OSError as error:  # a missing, read-only or full folder, a name too long
        raise OutputError.writing("the gallery", path, error) from error
    return path


def read_gallery(
    path: str | os.PathLike, key=None, allow_unverified: bool = False
) -> tuple[list[str], np.ndarray, str]:
    """(names, embeddings, recogniser fingerprint) of a verified gallery file; GalleryError otherwise."""
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
        raise GalleryError(
            f"{path} has gallery format {version}; this fhsdk reads formats 1 to {FORMAT_VERSION}: "
            "upgrade fhsdk (pip install -U fhsdk) or re-enrol"
        )
    if set(arrays) != _FIELDS[version] and not (version >= 2 and set(arrays) == _FIELDS[version] - {"checksum"}):
        raise GalleryError(
            f"{damaged} (format {version} with the arrays {', '.join(sorted(arrays))}): "
            "restore it from a backup or re-enrol"
        )
    if stored_checksum is not None:
        if stored_checksum != checksum({k: v for k, v in arrays.items() if k != "checksum"}):
            raise GalleryError(
                f"{path} fails its SHA-256 checksum: it was damaged or altered after it was saved; "
                "restore it from a backup or re-enrol"
            )
    elif version >= 2:
        raise GalleryError(
            f"{path} (format {version}) has lost its checksum: it was altered after it was saved; "
            "restore it from a backup or re-enrol"
        )
    elif not allow_unverified:
        raise GalleryError(
            f"{path} is a format-1 gallery, which has no checksum: it cannot be verified (a newer "
            "gallery rewritten as format 1 would look the same). If you trust it, load it with "
            "Gallery.load(path, allow_unverified=True) and save it again to add a checksum; if not, restore it "
            "from a backup or re-enrol"
        )
    else:
        log.warning("%s is a format-1 gallery without a checksum, loaded unverified; save it again to add one", path)
    names = _names(arrays, version, damaged)
    if embeddings.dtype != np.float32 or embeddings.ndim != 2 or len(names) != len(embeddings):
        raise GalleryError(
            f"{path} is inconsistent ({len(names)} names, embeddings {embeddings.dtype} "
            f"{embeddings.shape}): restore it from a backup or re-enrol"
        )
    return names, embeddings, fingerprint


def _names(arrays: dict[str, np.ndarray], version: int, damaged: str) -> list[str]:
    """The identity names of a verified file: a unicode array (formats 1, 2) or UTF-8 bytes + offsets (3)."""
    try:
        if version < 3:
            if arrays["names"].ndim != 1:
                raise ValueError(f"names of shape {arrays['names'].shape}")
            return [str(n) for n in arrays["names"]]
        data, offsets = arrays["names_utf8"], arrays["name_offsets"]
        if (
            data.dtype != np.uint8
            or data.ndim != 1
            or offsets.dtype != np.int64
            or offsets.ndim != 1
            or len(offsets) == 0
            or offsets[0] != 0
            or offsets[-1] != len(data)
            or (np.diff(offsets) < 0).any()
        ):
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
        descriptor, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(descriptor)
        os.unlink(tmp)
    except OSError as error:
        raise OutputError.writing("the gallery", path, error) from error
    return path


def gallery_path(path: str | os.PathLike) -> Path:
    """Where save(path) writes: the path with '.npz' appended unless it already ends so."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def checksum(arrays: dict[str, np.ndarray]) -> str:
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
        raise GalleryError(
            f"cannot read gallery {path}: {error.strerror or error} (errno {error.errno}); check the "
            "file's permissions and the disk"
        ) from error


def _read_arrays_from(path: Path, key) -> dict[str, np.ndarray]:
    what_to_do = "restore it from a backup or re-enrol"
    with open(path, "rb") as handle:
        head = handle.read(len(encryption.MAGIC))
        if not head:
            raise GalleryError(f"{path} is empty (0 bytes), probably from an interrupted copy: {what_to_do}")
        if head == encryption.MAGIC:
            if key is None:
                raise GalleryError(
                    f"{path} is encrypted: give its key (Gallery.load(path, key=...), "
                    "Pipeline(gallery_key=...) or `fhsdk ... --gallery-key-env NAME`)"
                )
            source = io.BytesIO(encryption.decrypt(encryption.cipher(key), handle.read(), path))
        elif key is not None and head.startswith(b"PK"):  # refuse rather than trust an unauthenticated file
            raise GalleryError(
                f"{path} is not encrypted but a key was given: load it without a key, "
                "or save it again with the key to encrypt it"
            )
        elif not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            raise GalleryError(
                f"{path} is not an fhsdk gallery (neither a NumPy .npz archive nor an encrypted "
                f"gallery): check the path, or {what_to_do}"
            )
        else:
            handle.seek(0)
            source = handle
        try:
            with np.load(source, allow_pickle=False) as data:
                found = set(data.files)
                if not any(found <= fields for fields in _FIELDS.values()) or "format_version" not in found:
                    raise GalleryError(
                        f"{path} is a NumPy archive but not an fhsdk gallery (it holds "
                        f"{', '.join(sorted(found)) or 'nothing'}): check the path, or {what_to_do}"
                    )
                return {name: data[name] for name in data.files}
        except GalleryError:
            raise
        except Exception as error:  # zip, CRC, header and pickle refusals all mean the same thing here
            raise GalleryError(
                f"{path} is damaged or not an fhsdk gallery ({type(error).__name__}: {error}): {what_to_do}"
            ) from error


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
    prefix = temp_prefix(path)
    for entry in path.parent.iterdir():
        if entry.name.startswith(prefix):
            log.info("removing %s, left by an interrupted save", entry)
            entry.unlink(missing_ok=True)
