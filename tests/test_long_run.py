"""Long runs: 10,000 frames through the pipeline with flat memory, bounded queues and expiring tracks."""

import cv2
import numpy as np
import pytest
import skimage.data

import fhsdk

FRAMES = 10_000
WARMUP = 1_000
ALLOWED_GROWTH_MB = 40  # after warm-up; a leak of one 128-D float32 embedding per frame alone would be ~5 MB


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * 4096 / 2**20


def _generated_source(face: np.ndarray, count: int):
    """Frames of a small scene where a face comes (10 frames, moving) and goes (60 frames, so its track expires)."""
    background = np.full((120, 160, 3), 90, np.uint8)
    for index in range(count):
        frame = background.copy()
        phase = index % 70
        if phase < 10:
            x = 10 + 6 * phase
            frame[30 : 30 + face.shape[0], x : x + face.shape[1]] = face
        yield frame


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs Linux /proc to read RSS")
def test_ten_thousand_frames_keep_memory_flat():
    astronaut = skimage.data.astronaut()[:, :, ::-1].copy()
    face = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    pipe.enroll("eileen", [astronaut])

    rss_after_warmup = None
    frames_with_faces = events = lost = max_tracks = 0
    for result in pipe.stream(_generated_source(face, FRAMES), batch_frames=8, max_queue=8):
        frames_with_faces += bool(result.faces)
        events += len(result.events)
        lost += sum(e.get("event") == "lost" for e in result.events)
        max_tracks = max(max_tracks, len(pipe.tracker.tracks))
        if result.index == WARMUP:
            rss_after_warmup = _rss_mb()
    growth = _rss_mb() - rss_after_warmup
    print(
        f"{FRAMES} frames, {frames_with_faces} with a face, {events} events, {lost} tracks lost, "
        f"at most {max_tracks} live tracks, RSS growth after warm-up {growth:.1f} MB"
    )
    assert result.index == FRAMES - 1
    assert frames_with_faces > FRAMES // 8
    assert lost >= FRAMES // 70 - 2  # every appearance's track expired
    assert max_tracks <= 3
    assert growth < ALLOWED_GROWTH_MB
