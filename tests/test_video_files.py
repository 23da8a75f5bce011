"""Bad video files end in VideoSourceError, or a defined outcome, at once: never a hang or a crash.

Every file is written here into tmp_path (a small real video from cv2.VideoWriter first, then damaged
copies of it); no data files are committed.
"""

import logging
import time

import cv2
import numpy as np
import pytest

from fhsdk import VideoSourceError
from fhsdk.video import ThreadedReader, iterate_source

FRAMES = 30


def _write_video(path, fourcc, frames=FRAMES):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (64, 48))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc}"
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {"avi": _write_video(folder / "clip.avi", "MJPG"), "mp4": _write_video(folder / "clip.mp4", "mp4v")}


def _read_threaded(path):
    with ThreadedReader(str(path), stall_timeout=5) as reader:
        return list(reader)


# Each builder writes one bad file (or none) into a folder and returns its path.
BAD_FILES = {
    "zero_bytes": lambda d, v: _write(d / "empty.mp4", b""),
    "random_bytes": lambda d, v: _write(d / "noise.mp4", np.random.default_rng(1).bytes(5000)),
    "text_as_mp4": lambda d, v: _write(d / "notes.mp4", b"this is not a video\n" * 50),
    "avi_first_300_bytes": lambda d, v: _write(d / "head.avi", v["avi"].read_bytes()[:300]),
    "mp4_first_300_bytes": lambda d, v: _write(d / "head.mp4", v["mp4"].read_bytes()[:300]),
    "mp4_cut_in_middle": lambda d, v: _write(d / "half.mp4", v["mp4"].read_bytes()[: v["mp4"].stat().st_size // 2]),
    "missing_path": lambda d, v: d / "absent.mp4",
    "directory": lambda d, v: _mkdir(d / "folder.mp4"),
}
MESSAGES = {"zero_bytes": "empty", "missing_path": "no video file", "directory": "directory"}


def _write(path, data):
    path.write_bytes(data)
    return path


def _mkdir(path):
    path.mkdir()
    return path


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_video_source_error_quickly(case, videos, tmp_path):
    path = BAD_FILES[case](tmp_path, videos)
    for read in (_read_threaded, lambda p: list(iterate_source(p))):  # the stream's path and the CLI's
        started = time.monotonic()
        with pytest.raises(VideoSourceError, match=MESSAGES.get(case, "cannot decode")) as error:
            read(path)
        assert time.monotonic() - started < 2.0
        assert path.name in str(error.value)  # the message names the file


def test_intact_files_read_completely(videos):
    for path in videos.values():
        frames = _read_threaded(path)
        assert [f.index for f in frames] == list(range(FRAMES))
        assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)


def test_avi_cut_in_middle_yields_frames_before_cut_and_warns(videos, tmp_path, caplog):
    # Decided behaviour: an AVI cut mid-way decodes up to the cut and ends normally (what ffmpeg does);
    # the loss is logged, since the header still announces every frame.
    data = videos["avi"].read_bytes()
    path = _write(tmp_path / "half.avi", data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="fhsdk.video"):
        frames = _read_threaded(path)
    assert 0 < len(frames) < FRAMES
    assert [f.index for f in frames] == list(range(len(frames)))
    assert any("truncated" in r.getMessage() and f"of the {FRAMES} frames" in r.getMessage() for r in caplog.records)


def test_png_renamed_to_mp4_is_one_frame(tmp_path):
    # Decided behaviour: FFmpeg probes content, not the extension, so a still image is a 1-frame video.
    image = np.random.default_rng(2).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    png = tmp_path / "still.png"
    cv2.imwrite(str(png), image)
    path = png.rename(tmp_path / "still.mp4")
    frames = _read_threaded(path)
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0].image, image)  # PNG is lossless
