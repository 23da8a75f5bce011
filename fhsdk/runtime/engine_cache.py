"""TensorRT engine cache: keys, paths and a self-checking file format.

An engine is only valid for the exact ONNX graph, TensorRT version, GPU model, compute capability,
precision, optimisation profile, pinned layers and builder options it was built with, so the key
holds all of them and the file name is the key's digest. The file carries its own key and a
SHA-256 of the engine bytes; `read_engine` refuses a file whose key or bytes do not match, rather
than letting TensorRT deserialize something foreign or truncated.

File layout: MAGIC (8 bytes) | format version (u32 LE) | header length (u32 LE) | header (UTF-8
JSON: key, engine_sha256, engine_bytes) | engine bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fhsdk.errors import WeightsError
from fhsdk.files import atomic_write_bytes
from fhsdk.runtime.trt_plan import OptimizationProfile
from fhsdk.weights import cache_dir

MAGIC = b"FHSDKTRT"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")


class EngineCacheError(WeightsError):
    """A cached engine file is corrupt, tampered with, or was built for something else."""


@dataclass(frozen=True)
class EngineKey:
    """Everything that changes a TensorRT engine."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    profile: OptimizationProfile
    pinned_layers: tuple[str, ...] = ()
    pinned_layer_types: tuple[str, ...] = ()
    builder_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Order of pinned layers and options does not change the engine: canonicalise it.
        object.__setattr__(self, "compute_capability", tuple(int(v) for v in self.compute_capability))
        object.__setattr__(self, "pinned_layers", tuple(sorted(set(self.pinned_layers))))
        object.__setattr__(self, "pinned_layer_types", tuple(sorted({t.upper() for t in self.pinned_layer_types})))
        object.__setattr__(self, "builder_options", tuple(sorted(dict(self.builder_options).items())))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = self.profile.to_dict()
        data["compute_capability"] = list(self.compute_capability)
        data["pinned_layers"] = list(self.pinned_layers)
        data["pinned_layer_types"] = list(self.pinned_layer_types)
        data["builder_options"] = {k: v for k, v in self.builder_options}
        return data

    def digest(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def engine_cache_dir(root: str | os.PathLike | None = None) -> Path:
    path = Path(root) if root is not None else cache_dir() / "engines"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_path(key: EngineKey, stem: str = "model", root: str | os.PathLike | None = None) -> Path:
    """Where the engine for `key` lives: <root>/<stem>-<precision>-<digest[:20]>.engine."""
    safe_stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem) or "model"
    return engine_cache_dir(root) / f"{safe_stem}-{key.precision}-{key.digest()[:20]}.engine"


def write_engine(path: str | os.PathLike, key: EngineKey, engine: bytes) -> Path:
    """Write engine bytes with their header; atomic (temp file then rename)."""
    engine = bytes(engine)
    header = json.dumps(
        {
            "key": key.to_dict(),
            "key_digest": key.digest(),
            "engine_sha256": hashlib.sha256(engine).hexdigest(),
            "engine_bytes": len(engine),
        },
        sort_keys=True,
    ).encode()
    return atomic_write_bytes(path, _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header)) + header + engine)


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], int]:
    """(header dict, offset of the engine bytes); refuses files that are not fhsdk engine files."""
    path = Path(path)
    if not path.is_file():
        raise EngineCacheError(f"engine file '{path}' does not exist: build it with `fhsdk build-engine`")
    with open(path, "rb") as handle:
        prefix = handle.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise EngineCacheError(f"'{path}' is truncated (no header): delete it and rebuild the engine")
        magic, version, header_len = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise EngineCacheError(
                f"'{path}' is not an fhsdk engine file (bad magic): fhsdk loads engines written by "
                f"`fhsdk build-engine`, not raw trtexec plans"
            )
        if version != FORMAT_VERSION:
            raise EngineCacheError(f"'{path}' has format version {version}, expected {FORMAT_VERSION}: rebuild it")
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode())
        header["key"], header["engine_sha256"], header["engine_bytes"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise EngineCacheError(f"'{path}' has a corrupt header ({error}): delete it and rebuild the engine") from error
    return header, _PREFIX.size + header_len


def read_engine(path: str | os.PathLike, expected: EngineKey | None = None) -> bytes:
    """Engine bytes from a cache file, after checking its key (if given) and its SHA-256."""
    header, offset = read_header(path)
    if expected is not None and header["key"] != expected.to_dict():
        stored, wanted = header["key"], expected.to_dict()
        differing = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise EngineCacheError(
            f"engine '{path}' was built for a different configuration (differs in: "
            f"{', '.join(differing)}): delete it and rebuild with `fhsdk build-engine`"
        )
    with open(path, "rb") as handle:
        handle.seek(offset)
        engine = handle.read()
    if len(engine) != header["engine_bytes"] or hashlib.sha256(engine).hexdigest() != header["engine_sha256"]:
        raise EngineCacheError(
            f"engine '{path}' fails its SHA-256 check (corrupt or modified after it was written): "
            f"delete it and rebuild with `fhsdk build-engine`"
        )
    return engine
