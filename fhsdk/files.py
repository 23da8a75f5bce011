"""Writing a file so that readers see the old one or the new one, never half of either."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_MARK = ".fhsdk-save-"  # temporaries are ".<file name>.fhsdk-save-<pid>-<thread>.tmp<suffix>"


def temp_prefix(path: str | os.PathLike) -> str:
    """How every temporary of `path` begins: what a sweep of killed writers' leftovers looks for."""
    return f".{Path(path).name}{TEMP_MARK}"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write; when the block ends without an error the file
    is flushed to disk, renamed over `path` in one step and the rename made durable (the folder is
    fsynced), otherwise it is removed. A crash or kill at any moment leaves the old file or the new one.

    The temporary name ends with `path`'s own suffix, so writers that append one (np.save, np.savez)
    write exactly there, and it is unique per process and thread, so concurrent writers never share it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{temp_prefix(path)}{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        if os.name == "posix":  # Windows cannot open a folder for fsync; NTFS journals the rename
            _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
