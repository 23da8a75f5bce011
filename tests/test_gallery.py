"""The gallery file: integrity, atomic saves under SIGKILL, encryption at rest, and FAISS search."""

import io
import logging
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fhsdk
from fhsdk import BackendUnavailableError, GalleryError, InvalidInputError
from fhsdk.gallery import FORMAT_VERSION, Gallery

FIELDS = ("format_version", "recognizer_fingerprint", "names_utf8", "name_offsets", "embeddings")
FIELDS_2 = ("format_version", "recognizer_fingerprint", "names", "embeddings")  # formats 1 and 2
try:
    import cryptography  # noqa: F401

    HAVE_CRYPTO = True
except ImportError:  # the [crypto] extra is optional; the encryption tests skip without it
    HAVE_CRYPTO = False


def _gallery(rows=5, dim=128, fingerprint="fp", seed=0):
    rng = np.random.default_rng(seed)
    gallery = Gallery(dim, fingerprint)
    for i in range(rows):
        gallery.add(f"person-{i % 3}", rng.normal(size=dim))
    return gallery


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _temp_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if ".fhsdk-save-" in p.name or p.name.endswith(".tmp"))


def _assert_same(a, b):
    assert a.names == b.names and a.recognizer_fingerprint == b.recognizer_fingerprint and a.dim == b.dim
    np.testing.assert_array_equal(a.embeddings, b.embeddings)


# ---- format and round trip ---------------------------------------------------------------------


def test_saved_file_is_format_3_with_checksum(tmp_path):
    gallery = _gallery()
    path = gallery.save(tmp_path / "g")
    assert path.name == "g.npz"
    stored = _arrays(path)
    assert set(stored) == {*FIELDS, "checksum"}
    assert int(stored["format_version"]) == FORMAT_VERSION == 3
    assert len(str(stored["checksum"])) == 64  # SHA-256, hex
    _assert_same(Gallery.load(path, recognizer_fingerprint="fp"), gallery)
    assert _temp_files(tmp_path) == []


names = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and "\0" not in s)


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(1, 16),
    people=st.lists(st.tuples(names, st.integers(1, 3)), max_size=6),
    fingerprint=st.text(max_size=20).filter(lambda s: "\0" not in s),
    seed=st.integers(0, 2**32 - 1),
    encrypt=st.booleans() if HAVE_CRYPTO else st.just(False),
)
def test_round_trip_of_random_galleries(dim, people, fingerprint, seed, encrypt):
    rng = np.random.default_rng(seed)
    gallery = Gallery(dim, fingerprint)
    for name, count in people:
        gallery.add(name, rng.normal(size=(count, dim)) + 0.1)
    key = Gallery.generate_key() if encrypt else None
    with tempfile.TemporaryDirectory() as folder:
        path = gallery.save(Path(folder) / "g.npz", key=key)
        loaded = Gallery.load(path, recognizer_fingerprint=fingerprint, key=key)
        assert _temp_files(folder) == []
    _assert_same(loaded, gallery)
    if len(gallery):
        assert loaded.match(gallery.embeddings, 0.99)[0].identity == gallery.names[0]


def test_empty_gallery_round_trips(tmp_path):
    loaded = Gallery.load(Gallery(64, "fp").save(tmp_path / "empty.npz"))
    assert len(loaded) == 0 and loaded.dim == 64 and loaded.embeddings.shape == (0, 64)


# ---- add() and search() inputs -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
def test_add_accepts_only_d_vectors_or_n_by_d(shape):
    gallery = Gallery(dim=8)
    vectors = np.ones(shape, dtype=np.float32)
    good = (len(shape) == 1 and shape == (8,)) or (len(shape) == 2 and shape[1] == 8 and shape[0] >= 1)
    if good:
        gallery.add("a", vectors)
        assert len(gallery) == (1 if len(shape) == 1 else shape[0])
        np.testing.assert_allclose(np.linalg.norm(gallery.embeddings, axis=1), 1.0, rtol=1e-6)
    else:
        with pytest.raises(InvalidInputError, match="shape|no embeddings"):
            gallery.add("a", vectors)
        assert len(gallery) == 0


@settings(max_examples=40, deadline=None)
@given(bad=st.sampled_from([np.nan, np.inf, -np.inf]), row=st.integers(0, 2), column=st.integers(0, 7))
def test_add_rejects_non_finite_values(bad, row, column):
    vectors = np.ones((3, 8), dtype=np.float32)
    vectors[row, column] = bad
    gallery = Gallery(dim=8)
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        gallery.add("a", vectors)
    assert len(gallery) == 0


@pytest.mark.parametrize("name", ["", "   ", None, 3, "a\0b"])
def test_add_rejects_bad_names(name):
    with pytest.raises(InvalidInputError, match="name"):
        Gallery(dim=4).add(name, np.ones(4))


def test_add_rejects_zero_and_non_numeric_embeddings():
    gallery = Gallery(dim=4)
    with pytest.raises(InvalidInputError, match="all zeros"):
        gallery.add("zero", np.zeros(4))
    with pytest.raises(InvalidInputError, match="averages to zero"):
        gallery.add("opposite", np.array([[1, 0, 0, 0], [-1, 0, 0, 0]]), average=True)
    with pytest.raises(InvalidInputError, match="numbers"):
        gallery.add("text", ["a", "b", "c", "d"])
    with pytest.raises(InvalidInputError, match="shape"):
        gallery.search(np.ones((2, 5)))


# ---- damaged, foreign and hostile files ----------------------------------------------------------


def _rezip(path, change):
    """Rewrite the .npz with `change(arrays)` applied, as a consistent zip (its CRCs pass)."""
    arrays = _arrays(path)
    change(arrays)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _flip_embedding_bit(arrays):
    embeddings = arrays["embeddings"].copy()
    embeddings.view(np.uint32)[2, 17] ^= 1 << 3
    arrays["embeddings"] = embeddings


def _flip_raw_byte_in_embeddings(path):
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("embeddings.npy")
    data[info.header_offset + 200] ^= 0x10  # past the local header and .npy header: inside the floats
    path.write_bytes(bytes(data))


class _Payload:
    """Unpickling this runs code (touches a marker file): the gallery must never do it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


DAMAGE = {
    # name: (how to damage the saved file at path, message fragment)
    "bit flip, re-zipped": (lambda p: _rezip(p, _flip_embedding_bit), "fails its SHA-256 checksum"),
    "renamed person, re-zipped": (
        lambda p: _rezip(p, lambda a: a.update(names_utf8=np.full_like(a["names_utf8"], 120))),
        "fails its SHA-256 checksum",
    ),
    "other fingerprint, re-zipped": (
        lambda p: _rezip(p, lambda a: a.update(recognizer_fingerprint=np.array("fp"))),
        "fails its SHA-256 checksum",
    ),
    "checksum removed": (lambda p: _rezip(p, lambda a: a.pop("checksum")), "lost its checksum"),
    "extra entry": (lambda p: _rezip(p, lambda a: a.update(extra=np.zeros(3))), "not an fhsdk gallery"),
    "future version": (lambda p: _rezip(p, lambda a: a.update(format_version=np.array(99))), "upgrade fhsdk"),
    "names as objects": (
        lambda p: _rezip(p, lambda a: a.update(names_utf8=np.array(list(a["names_utf8"]), dtype=object))),
        "damaged",
    ),
    "format 3 rewritten as format 1": (lambda p: _downgrade(p, 1), "format-1 gallery, which has no checksum"),
    "format 3 rewritten as format 2": (lambda p: _downgrade(p, 2), "fails its SHA-256 checksum"),
    "format 2 fields under format 3": (lambda p: _downgrade(p, 2, keep_version=True), "damaged"),
    "raw bit flip (zip CRC)": (_flip_raw_byte_in_embeddings, "damaged"),
    "truncated to 50 bytes": (lambda p: p.write_bytes(p.read_bytes()[:50]), "damaged"),
    "truncated by half": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "damaged"),
    "last byte cut": (lambda p: p.write_bytes(p.read_bytes()[:-1]), "damaged"),
    "zero bytes": (lambda p: p.write_bytes(b""), "empty"),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(1).bytes(5000)), "not an fhsdk gallery"),
    "random bytes after a zip signature": (
        lambda p: p.write_bytes(b"PK\x03\x04" + np.random.default_rng(2).bytes(999)),
        "damaged",
    ),
    "foreign npz": (lambda p: np.savez(p, weights=np.ones(3), bias=np.zeros(2)), "holds bias, weights"),
    "single .npy": (lambda p: p.write_bytes(_npy_bytes()), "not an fhsdk gallery"),
    "text file": (lambda p: p.write_text("name,embedding\nalice,0.1 0.2\n"), "not an fhsdk gallery"),
}


def _downgrade(path, version, keep_version=False):
    """Rewrite a format-3 gallery in the layout of an older format: names as a unicode array, and (format 1)
    no checksum; the checksum, if kept, is the old one."""

    def change(arrays):
        text, offsets = arrays.pop("names_utf8").tobytes(), arrays.pop("name_offsets")
        arrays["names"] = np.array([text[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:])])
        if not keep_version:
            arrays["format_version"] = np.array(version)
        if version == 1:
            arrays.pop("checksum")

    _rezip(path, change)


def _npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.ones((3, 128), np.float32))
    return buffer.getvalue()


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_or_foreign_file_is_refused(tmp_path, case):
    damage, message = DAMAGE[case]
    path = _gallery(fingerprint="fp2" if "fingerprint" in case else "fp").save(tmp_path / "g.npz")
    damage(path)
    with pytest.raises(GalleryError, match=message) as error:
        Gallery.load(path)
    assert str(path) in str(error.value)
    assert any(hint in str(error.value) for hint in ("backup", "re-enrol", "check the path", "upgrade"))


@pytest.mark.parametrize("where", ["whole file", "names inside the npz"])
def test_pickles_are_never_unpickled(tmp_path, where):
    marker = tmp_path / "code_ran"
    path = tmp_path / "g.npz"
    if where == "whole file":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:  # a well-formed gallery whose names array is a pickled object array
        arrays = {name: np.array(0) for name in FIELDS_2}
        arrays["names"] = np.array([_Payload(marker)], dtype=object)
        np.savez(path, **arrays)
    with pytest.raises(GalleryError):
        Gallery.load(path)
    assert not marker.exists()


def test_wrong_recogniser_and_missing_file(tmp_path):
    path = _gallery(fingerprint="abc").save(tmp_path / "g.npz")
    with pytest.raises(GalleryError, match="another recogniser.*re-enrol"):
        Gallery.load(path, recognizer_fingerprint="xyz")
    with pytest.raises(GalleryError, match="no gallery file.*fhsdk enroll"):
        Gallery.load(tmp_path / "absent.npz")


def test_format_1_file_loads_only_when_asked_with_a_warning(tmp_path, caplog):
    """A format-1 file cannot be verified, so nothing tells it from a newer one rewritten as format 1 to
    skip the checksum (issue 15, 3.9): refused unless allow_unverified=True."""
    gallery = _gallery()
    path = tmp_path / "old.npz"
    np.savez(
        path,
        format_version=np.array(1),
        recognizer_fingerprint=np.array("fp"),
        names=np.array(gallery.names),
        embeddings=gallery.embeddings,
    )
    with pytest.raises(GalleryError, match="allow_unverified=True"):
        Gallery.load(path, recognizer_fingerprint="fp")
    with caplog.at_level(logging.WARNING, logger="fhsdk.gallery"):
        loaded = Gallery.load(path, recognizer_fingerprint="fp", allow_unverified=True)
    _assert_same(loaded, gallery)
    assert "without a checksum" in caplog.text
    stored = _arrays(loaded.save(path))  # saving upgrades it to the current format
    assert "checksum" in stored and int(stored["format_version"]) == FORMAT_VERSION
    _assert_same(Gallery.load(path, recognizer_fingerprint="fp"), gallery)


def test_format_2_file_still_loads(tmp_path):
    from fhsdk.gallery.file_format import checksum as _checksum

    gallery = _gallery()
    arrays = {
        "format_version": np.array(2, dtype=np.int64),
        "recognizer_fingerprint": np.array("fp"),
        "names": np.array(gallery.names),
        "embeddings": gallery.embeddings,
    }
    arrays["checksum"] = np.array(_checksum(arrays))  # as format 2 wrote it
    np.savez(tmp_path / "v2.npz", **arrays)
    _assert_same(Gallery.load(tmp_path / "v2.npz", recognizer_fingerprint="fp"), gallery)


def test_one_long_name_does_not_widen_every_row(tmp_path):
    """Issue 15, 3.8: names were stored fixed-width (UTF-32 at the longest name's length): one 1,000-character
    name grew a 20k-row gallery from 10 to 86 MB. Format 3 stores them end to end."""
    rows = 20_000
    gallery = Gallery(128, "fp")
    gallery.add("someone", np.random.default_rng(0).normal(size=(rows - 1, 128)))
    gallery.add("x" * 1000 + " é 名前", np.ones(128))
    size = gallery.save(tmp_path / "g.npz").stat().st_size
    assert size < rows * 128 * 4 * 1.05  # the embeddings, and about 7 bytes a name
    loaded = Gallery.load(tmp_path / "g.npz")
    assert loaded.names[-1] == "x" * 1000 + " é 名前" and loaded.names[:-1] == ["someone"] * (rows - 1)


# ---- atomic saves ------------------------------------------------------------------------------------


def test_failed_save_keeps_old_gallery_and_leaves_no_temp_file(tmp_path, monkeypatch):
    old = _gallery(seed=1)
    path = old.save(tmp_path / "g.npz")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        _gallery(seed=2).save(path)
    _assert_same(Gallery.load(path), old)
    assert _temp_files(tmp_path) == []


def test_next_save_sweeps_only_our_stale_temp_files(tmp_path):
    path = _gallery().save(tmp_path / "g.npz")
    ours = [tmp_path / ".g.npz.fhsdk-save-abc123.tmp", tmp_path / ".g.npz.fhsdk-save-zz_9.tmp"]
    theirs = [tmp_path / "notes.tmp", tmp_path / ".other.npz.fhsdk-save-abc.tmp", tmp_path / ".g.npz.tmp"]
    for stray in ours + theirs:
        stray.write_bytes(b"half a gallery")
    _gallery().save(path)
    assert [p for p in ours if p.exists()] == []
    assert all(p.exists() for p in theirs)


# A saver that loads the gallery on disk and writes new versions of it as fast as it can. Version v
# names row 0 'version-v' and sets it to the unit vector e_(v mod 128); the other rows never change.
SAVER = r"""
import io, os, sys, time
import numpy as np
from fhsdk.gallery import Gallery
path, stop_at, saves_first = sys.argv[1], sys.argv[2], int(sys.argv[3])
gallery = Gallery.load(path)
version = int(gallery.names[0].split("-")[1])
print("ready", version, flush=True)  # the version on disk when this saver started: its baseline


def hold(phase):  # the test kills us while we wait here, at exactly this point of a save
    print("at", phase, version, flush=True)
    time.sleep(600)


def savez(file, **arrays):  # 'write': killed with half the temp file written
    buffer = io.BytesIO()
    real_savez(buffer, **arrays)
    with open(file, "wb") as handle:
        handle.write(buffer.getbuffer()[: len(buffer.getbuffer()) // 2])
        handle.flush()
        hold("write")


def replace(source, target):  # 'rename': killed before the rename; 'renamed': after it, before the report
    if stop_at == "rename":
        hold("rename")
    real_replace(source, target)
    if stop_at == "renamed":
        hold("renamed")


real_savez, real_replace = np.savez, os.replace
saves = 0
while True:
    version += 1
    if saves == saves_first and stop_at != "random":
        if stop_at == "write":
            np.savez = savez
        elif stop_at in ("rename", "renamed"):
            os.replace = replace
        else:  # 'reported': killed after reporting its saves
            hold("reported")
    gallery._names[0] = f"version-{version}"
    gallery._embeddings[0] = np.eye(128, dtype=np.float32)[version % 128]
    gallery.save(path)
    saves += 1
    print("saved", version, flush=True)
"""

# Where a kill falls, and what the file must hold then (relative to the killed saver's last report).
# 'renamed' twice in a row is the schedule that once failed: each saver starts from the file on disk,
# which a killed predecessor may have moved one version past its last report.
KILL_PHASES = {"write": 0, "rename": 0, "renamed": 1, "reported": 0}
KILL_SCHEDULE = [
    ("renamed", 1),
    ("renamed", 0),
    ("write", 0),
    ("write", 2),
    ("rename", 1),
    ("reported", 0),
    ("reported", 2),
    ("renamed", 2),
] * 3 + [("random", 0)] * 6  # (phase, saves reported before it)


def _kill_saver(path, phase, saves_first, delay):
    """Runs a saver that saves `saves_first` versions and then stops at `phase` (or, for 'random', keeps
    saving), SIGKILLs it, and returns (version it started from, versions it reported saved)."""
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path), phase, str(saves_first)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = []
    try:
        ready = saver.stdout.readline().split()
        assert ready[0] == "ready"
        if phase == "random":
            time.sleep(delay)
        else:
            for line in saver.stdout:  # wait, however loaded the host, until it holds at the phase
                lines.append(line)
                if line.startswith("at "):
                    assert line.split()[1] == phase
                    break
    finally:
        saver.send_signal(signal.SIGKILL)
        output, _ = saver.communicate(timeout=60)
    assert saver.returncode == -signal.SIGKILL
    saved = [int(line.split()[1]) for line in lines + output.splitlines() if line.startswith("saved")]
    return int(ready[1]), saved


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_during_saves_never_loses_the_gallery(tmp_path):
    rows, rng = 4_000, random.Random(0)  # 2 MB: the kill points are chosen, not hoped for, so size is no help
    base = np.random.default_rng(0).normal(size=(rows, 128)).astype(np.float32)
    gallery = Gallery(128, "fp")
    gallery.add("version-0", np.eye(128, dtype=np.float32)[0])
    gallery.add("someone", base[1:])
    path = gallery.save(tmp_path / "g.npz")
    rest = gallery.embeddings[1:].copy()
    started, versions_seen, on_disk = time.perf_counter(), set(), 0
    for phase, saves_first in KILL_SCHEDULE:
        start, saved = _kill_saver(path, phase, saves_first, rng.uniform(0.0, 0.3))
        assert start == on_disk  # a saver starts from what the last kill left
        reported = saved[-1] if saved else start
        loaded = Gallery.load(path, recognizer_fingerprint="fp")
        on_disk = int(loaded.names[0].split("-")[1])
        # the file is whole and holds the version the killed saver last reported, or, if the kill fell
        # between a rename and its report, the next one; never one it did not write
        if phase == "random":
            assert reported <= on_disk <= reported + 1
        else:
            assert on_disk == reported + KILL_PHASES[phase], phase
        versions_seen.add(on_disk)
        np.testing.assert_array_equal(loaded.embeddings[0], np.eye(128, dtype=np.float32)[on_disk % 128])
        np.testing.assert_array_equal(loaded.embeddings[1:], rest)
        assert loaded.names[1:] == ["someone"] * (rows - 1)
        # a killed save leaves at most hidden '.fhsdk-save-' files, which no one would take for the gallery
        strays = _temp_files(tmp_path)
        assert all(s.startswith(".g.npz.fhsdk-save-") and s.endswith(".tmp.npz") for s in strays)
        if phase in ("write", "rename"):
            assert strays, f"a kill at '{phase}' leaves its temp file"
        assert sorted(p.name for p in tmp_path.iterdir() if p.name not in strays) == [".g.npz.lock", "g.npz"]
    print(
        f"\n{len(KILL_SCHEDULE)} SIGKILLs in {time.perf_counter() - started:.1f} s; "
        f"{len(versions_seen)} distinct versions found after kills, the last {on_disk}"
    )
    loaded.save(path)  # the next save sweeps the killed saves' temp files
    assert _temp_files(tmp_path) == []


# ---- encryption at rest --------------------------------------------------------------------------------


def test_encrypted_round_trip_hides_contents(tmp_path):
    pytest.importorskip("cryptography")
    key = Gallery.generate_key()
    assert len(key) == 44 and key != Gallery.generate_key()
    gallery = _gallery(fingerprint="fp-secret")
    path = gallery.save(tmp_path / "g.npz", key=key)
    raw = path.read_bytes()
    for secret in ("person-1", "fp-secret"):
        assert secret.encode("utf-8") not in raw and secret.encode("utf-32-le") not in raw
    assert gallery.embeddings[0].tobytes()[:16] not in raw
    _assert_same(Gallery.load(path, recognizer_fingerprint="fp-secret", key=key), gallery)
    import base64  # 32 raw key bytes work as well as their base64 text

    _assert_same(Gallery.load(path, key=base64.urlsafe_b64decode(key)), gallery)


def _flip(offset):
    def damage(path):
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))

    return damage


@pytest.mark.parametrize(
    "case, damage, message",
    [
        ("no key", None, "is encrypted: give its key"),
        ("wrong key", None, "could not be decrypted: the key is wrong"),
        ("nonce flipped", _flip(30), "could not be decrypted"),
        ("ciphertext flipped", _flip(500), "could not be decrypted"),
        ("tag flipped", _flip(-1), "could not be decrypted"),
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[:-100]), "could not be decrypted"),
        ("header only", lambda p: p.write_bytes(p.read_bytes()[:26]), "could not be decrypted"),
        ("header flipped", _flip(3), "not an fhsdk gallery"),
    ],
)
def test_encrypted_gallery_refusals(tmp_path, case, damage, message):
    pytest.importorskip("cryptography")
    key = Gallery.generate_key()
    path = _gallery().save(tmp_path / "g.npz", key=key)
    if damage:
        damage(path)
    use = None if case == "no key" else Gallery.generate_key() if case == "wrong key" else key
    with pytest.raises(GalleryError, match=message):
        Gallery.load(path, key=use)


def test_plain_gallery_with_a_key_and_malformed_keys_are_refused(tmp_path):
    pytest.importorskip("cryptography")
    path = _gallery().save(tmp_path / "g.npz")
    with pytest.raises(GalleryError, match="not encrypted but a key was given"):
        Gallery.load(path, key=Gallery.generate_key())
    for bad in ("", "short", Gallery.generate_key()[:-4], "é" * 44, b"\x00" * 31):
        with pytest.raises(InvalidInputError, match="32 random bytes"):
            _gallery().save(tmp_path / "h.npz", key=bad)
    assert not (tmp_path / "h.npz").exists() and _temp_files(tmp_path) == []


def test_missing_cryptography_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(BackendUnavailableError, match=r'pip install "fhsdk\[crypto\]"'):
        Gallery.generate_key()
    with pytest.raises(BackendUnavailableError, match="crypto"):
        _gallery().save(tmp_path / "g.npz", key="A" * 43 + "=")


def test_cli_reads_the_key_from_the_named_environment_variable(tmp_path, monkeypatch, capsys):
    from fhsdk.cli import main

    pytest.importorskip("cryptography")
    path = _gallery().save(tmp_path / "g.npz", key=Gallery.generate_key())
    monkeypatch.delenv("FHSDK_TEST_GALLERY_KEY", raising=False)
    code = main(["run", "clip.mp4", "--gallery", str(path), "--gallery-key-env", "FHSDK_TEST_GALLERY_KEY"])
    assert code == 2 and "FHSDK_TEST_GALLERY_KEY" in capsys.readouterr().err
    code = main(["enroll", str(tmp_path), "--gallery", str(path), "--gallery-key-env", "FHSDK_TEST_GALLERY_KEY"])
    assert code == 2 and "not set or empty" in capsys.readouterr().err


def test_pipeline_loads_an_encrypted_gallery_with_its_key(tmp_path):
    pytest.importorskip("cryptography")
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    gallery = _gallery(fingerprint=pipe.embedder.fingerprint)
    key = Gallery.generate_key()
    path = gallery.save(tmp_path / "g.npz", key=key)
    loaded = fhsdk.Pipeline(hallucinator="bicubic", gallery=path, gallery_key=key).gallery
    _assert_same(loaded, gallery)
    with pytest.raises(GalleryError, match="encrypted"):
        fhsdk.Pipeline(hallucinator="bicubic", gallery=path)


# ---- FAISS --------------------------------------------------------------------------------------------------


def _unit_rows(n, dim=128, seed=0):
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def big_gallery():
    gallery = Gallery(128, "fp")
    gallery.add("row", _unit_rows(5000))
    return gallery


def test_faiss_flat_gives_the_exact_top_k(big_gallery):
    pytest.importorskip("faiss")
    queries = _unit_rows(64, seed=1)
    exact = big_gallery.search(queries, k=10)
    big_gallery.build_index("faiss-flat")
    try:
        indices, similarities = big_gallery.search(queries, k=10)
        assert big_gallery.index_kind == "faiss-flat"
    finally:
        big_gallery.drop_index()
    np.testing.assert_array_equal(indices, exact[0])
    np.testing.assert_allclose(similarities, exact[1], atol=1e-5)
    assert indices.dtype == np.int64 and similarities.dtype == np.float32


# Random unit queries have no near neighbour: the hardest case for approximate search. Probes of
# enrolled rows (row + noise, cosine ~0.8 to it) are what a face seen again looks like.
@pytest.mark.parametrize(
    "kind, params, floor_random, floor_probes",
    [
        ("faiss-hnsw", {}, 0.9, 0.99),
        ("faiss-ivf", {}, 0.3, 0.9),
        ("faiss-ivf", {"ivf_lists": 64, "nprobe": 64}, 1.0, 1.0),  # every list searched: exact
    ],
)
def test_faiss_approximate_recall_at_1(big_gallery, kind, params, floor_random, floor_probes):
    pytest.importorskip("faiss")
    noise = np.random.default_rng(3).normal(size=(500, 128)).astype(np.float32)
    probes = big_gallery.embeddings[:1000:2] + 0.75 / np.sqrt(128) * noise
    queries = {"random": _unit_rows(500, seed=2), "probes": probes}
    truth = {name: big_gallery.search(q, k=1)[0][:, 0] for name, q in queries.items()}
    big_gallery.build_index(kind, **params)
    try:
        recall = {
            name: float((big_gallery.search(q, k=1)[0][:, 0] == truth[name]).mean()) for name, q in queries.items()
        }
    finally:
        big_gallery.drop_index()
    print(f"\n{kind} {params} recall@1 against exact on 5000 random unit 128-D rows, 500 queries each: {recall}")
    assert recall["random"] >= floor_random and recall["probes"] >= floor_probes


def test_tune_index_trades_speed_for_recall(big_gallery):
    pytest.importorskip("faiss")
    queries = _unit_rows(300, seed=6)
    truth = big_gallery.search(queries, k=1)[0][:, 0]
    big_gallery.build_index("faiss-ivf", ivf_lists=64, nprobe=1)
    try:
        low = (big_gallery.search(queries, k=1)[0][:, 0] == truth).mean()
        big_gallery.tune_index(nprobe=64)  # every list: exhaustive
        assert (big_gallery.search(queries, k=1)[0][:, 0] == truth).mean() == 1.0 > low
        with pytest.raises(InvalidInputError, match="ef_search tunes a 'faiss-hnsw' index"):
            big_gallery.tune_index(ef_search=100)
    finally:
        big_gallery.drop_index()


def test_faiss_index_follows_add_and_remove_and_matches_like_exact():
    pytest.importorskip("faiss")
    gallery = Gallery(128, "fp")
    gallery.add("a", _unit_rows(3, seed=3))
    gallery.build_index("faiss-flat")
    indices, similarities = gallery.search(_unit_rows(2, seed=4), k=10)  # k > N: N columns, like cosine_topk
    assert indices.shape == similarities.shape == (2, 3)
    new = _unit_rows(1, seed=5)
    gallery.add("b", new)
    assert gallery.match(new, 0.99)[0].identity == "b"
    gallery.remove("a")
    assert gallery.index_kind is None and gallery.match(new, 0.99)[0].identity == "b"
    with pytest.raises(InvalidInputError, match="unknown index"):
        gallery.build_index("annoy")
    with pytest.raises(InvalidInputError, match="needs at least"):
        gallery.build_index("faiss-ivf")
    gallery.build_index("faiss-flat")
    with pytest.raises(InvalidInputError, match="k must be"):
        gallery.search(new, k=0)


def test_missing_faiss_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(BackendUnavailableError, match=r'pip install "fhsdk\[faiss\]"'):
        _gallery().build_index("faiss-hnsw")


def test_readers_never_see_names_and_embeddings_of_different_versions():
    """Issue 15, 3.3: remove() replaced the names before the embeddings, so a concurrent match named the
    wrong person or raised IndexError. Updates now swap names, embeddings and index together."""
    import threading

    rng = np.random.default_rng(0)
    others = rng.normal(size=(20_000, 128)).astype(np.float32)
    others[:, 0] = -50  # far from the probe: its best match is 'bob', or no one while bob is removed
    probe = np.eye(128, dtype=np.float32)[0]
    gallery = Gallery(128, "fp")
    gallery.add("others", others)
    gallery.add("bob", probe)
    failures, done = [], threading.Event()

    def read():
        while not done.is_set():
            try:
                match = gallery.match(probe, 0.5)[0]
                if match.identity not in ("bob", None):  # None: while bob is removed
                    failures.append(match)
            except Exception as error:  # IndexError before the fix
                failures.append(error)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(30):  # bob's row moves between the end and the start: stale indexes show
            gallery.remove("others")
            gallery.add("others", others)
            gallery.remove("bob")
            gallery.add("bob", probe)
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(switch)
    assert failures == []
