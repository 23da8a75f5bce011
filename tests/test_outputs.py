"""What a run leaves behind: annotated video (readable at any size, source fps, no lost lines),
labels that say where a name comes from, and the per-identity summary."""

import cv2
import numpy as np
import pytest

from fhsdk.outputs import AnnotatedVideoWriter, IdentityLog, annotate, drawing_scale, face_label
from fhsdk.results import Face, FrameResult


def _face(identity=None, similarity=float("nan"), source=None, track_id=3, box=(10, 10, 40, 40)):
    return Face(
        box=np.array(box, np.float32),
        landmarks=np.zeros((5, 2)),
        score=0.99,
        size_px=15.0,
        identity=identity,
        similarity=similarity,
        track_id=track_id,
        identity_source=source,
    )


def test_labels_say_whether_a_name_needed_the_track_and_hint_the_threshold():
    assert face_label(_face("alice", 0.951, "frame")) == "#3 alice 0.95"
    assert face_label(_face("alice", 0.931, "track")) == "#3 alice 0.93 (track)"
    assert face_label(_face(None, 0.884), 0.92) == "#3 ? 0.88<0.92"
    assert face_label(_face(None, float("nan"), track_id=None), 0.92) == "?"


def _ink_rows(canvas, frame):
    """Rows where drawing changed the frame, above the face box (the label)."""
    return int((np.abs(canvas.astype(int) - frame.astype(int)).sum(axis=(1, 2)) > 0).sum())


def test_text_and_inset_scale_with_the_frame():
    """The font was fixed (0.35, unreadable at 1080p, clipped at 160x90) and the inset 64 px (half of a
    160x90 frame)."""
    assert drawing_scale(160, 90) == 4 and drawing_scale(1920, 1080) == 1 and drawing_scale(640, 360) == 1
    heights = {}
    for height in (360, 1080):
        frame = np.zeros((height, height * 16 // 9, 3), np.uint8)
        face = _face("alice", 0.95, "frame", box=(200, 300, 260, 350))
        canvas = annotate(frame, FrameResult(0, 0.0, [face]))
        heights[height] = _ink_rows(canvas[:300], frame[:300])
    assert heights[1080] >= 1.8 * heights[360]
    small = np.zeros((90, 160, 3), np.uint8)
    face = _face("alice", 0.95, "frame", box=(100, 40, 120, 60))
    face.restored = np.full((128, 128, 3), 200, np.uint8)
    canvas = annotate(small, FrameResult(0, 0.0, [face]), scale=drawing_scale(160, 90))
    assert canvas.shape[:2] == (360, 640)
    inset = (canvas[:, :, 0] == 200).sum()
    assert inset <= 0.05 * canvas.shape[0] * canvas.shape[1]  # the inset covers a few percent, not half


@pytest.mark.parametrize("size, written", [((81, 45), (648, 360)), ((641, 361), (642, 362))])
def test_video_keeps_the_source_fps_and_every_line(tmp_path, size, written):
    """Output was 25 fps whatever the input, and an 80x45 frame came out 80x44."""
    path = tmp_path / "out.mp4"
    frame = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    frame[-1] = 255  # the last line: it must survive
    with AnnotatedVideoWriter(path, 29.97, size) as writer:
        for _ in range(3):
            writer.write(frame, FrameResult(0, 0.0, []))
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=0.01)
    ok, decoded = capture.read()
    assert ok and decoded.shape[1::-1] == written == writer.size
    scale = writer.scale
    last_line = decoded[size[1] * scale - 1, : size[0] * scale]
    assert last_line.mean() > 150  # the source's bright last line is there, not cut off


def test_identity_log_answers_in_which_frames_someone_was_named():
    log = IdentityLog()
    for index in [0, 1, 2, 5, 6]:
        log.add(FrameResult(index, 0.0, [_face("alice", 0.95, "track" if index == 6 else "frame"), _face()]))
    log.add(FrameResult(7, 0.0, [_face("bob", 0.93, "frame")]))
    assert log.summary() == {
        "alice": {"frames": 5, "frames_from_track": 1, "ranges": [[0, 2], [5, 6]]},
        "bob": {"frames": 1, "frames_from_track": 0, "ranges": [[7, 7]]},
    }
