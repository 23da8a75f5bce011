"""fhsdk.files: one way to write a file atomically, used by every cache, engine and checkpoint writer."""

import threading

import numpy as np
import pytest

from fhsdk.files import atomic_path, atomic_write_bytes


def test_the_new_file_replaces_the_old_one_and_no_temporary_is_left(tmp_path):
    target = tmp_path / "cache.npz"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".npz") and tmp != target
        np.savez(tmp, x=np.arange(3))  # np.savez appends .npz unless the name has it: it must write at tmp
        assert target.read_bytes() == b"old"  # readers see the old file until the block ends
    assert np.load(target)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.npz"]


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "engine.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["engine.bin"]


def test_concurrent_writers_never_share_a_temporary(tmp_path):
    target = tmp_path / "shared.bin"
    payloads = [bytes([i]) * 100_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write_bytes, args=(target, data)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in payloads  # one writer's whole file, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]


def test_missing_folders_are_created(tmp_path):
    target = atomic_write_bytes(tmp_path / "a" / "b" / "c.bin", b"x")
    assert target.read_bytes() == b"x"
