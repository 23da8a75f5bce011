"""Live streams: retry with backoff, stalls, stopping from another thread, errors with their cause.

Sources are generated here: frame generators, source factories that fail on cue, unreachable URLs and
a local HTTP server that drops and stalls connections to a generated MJPG .avi.
"""

import http.server
import itertools
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fhsdk
from fhsdk import InvalidInputError, RetryPolicy, VideoSourceError
from fhsdk.video import ThreadedReader, is_live

FAST = RetryPolicy(max_retries=3, initial_backoff_s=0.01, max_backoff_s=0.05, jitter=0)


@pytest.fixture(scope="module")
def pipe():
    return fhsdk.Pipeline(hallucinator="bicubic")


@pytest.fixture
def release():
    """An event that blocked sources wait on; set at teardown so that no test leaves a thread stuck."""
    event = threading.Event()
    yield event
    event.set()


def _frame(i):
    return np.full((48, 64, 3), i % 256, np.uint8)


def _endless():
    for i in itertools.count():
        yield _frame(i)


def _decode_threads():
    return {t for t in threading.enumerate() if t.name == "fhsdk-decode"}


def _gone(threads, within=3.0):
    deadline = time.monotonic() + within
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not any(t.is_alive() for t in threads)


def _types(events):
    return [e["event"] for e in events if e["event"].startswith("source_")]


def test_retry_policy_backoff_defaults_and_validation(tmp_path):
    policy = RetryPolicy()
    assert [policy.backoff(k) for k in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert not policy.gives_up(policy.max_retries) and policy.gives_up(policy.max_retries + 1)
    assert not RetryPolicy(max_retries=None).gives_up(10**6) and RetryPolicy(max_retries=None).backoff(10**6) == 30
    delays = [policy.delay(3) for _ in range(200)]  # jitter: 2 s shortened by up to 20%, at random
    assert 1.6 <= min(delays) < max(delays) <= 2.0 and len(set(delays)) > 100
    assert RetryPolicy(jitter=0).delay(3) == 2.0
    for bad in (
        {"max_retries": -1},
        {"initial_backoff_s": 5, "max_backoff_s": 1},
        {"multiplier": 0.5},
        {"jitter": 1.5},
    ):
        with pytest.raises(InvalidInputError):
            RetryPolicy(**bad)
    assert is_live("rtsp://cam/1") and is_live("http://h/v.avi") and is_live(0) and is_live(_endless)
    assert not is_live("clip.mp4") and not is_live(tmp_path) and not is_live([_frame(0)]) and not is_live(True)
    # Files and one-pass iterables cannot be reopened: an explicit retry is refused, saying what can.
    for source in (str(tmp_path / "clip.mp4"), [_frame(0)]):
        with pytest.raises(InvalidInputError, match="source factories"):
            ThreadedReader(source, retry=FAST)
    with pytest.raises(InvalidInputError, match="stall_timeout"):
        ThreadedReader(_endless, stall_timeout=0)


def test_factory_reconnects_through_drops_then_gives_up_with_cause():
    """Frames, a lost link, a failed reopen, frames again, an end, then a source that stays down."""
    calls = []

    def camera():
        calls.append(time.monotonic())
        if len(calls) == 1:
            yield from (_frame(i) for i in range(5))
            raise ConnectionError("link lost")
        if len(calls) == 2:
            raise OSError("camera busy")
        if len(calls) == 3:
            yield from (_frame(i) for i in range(4))
            return
        raise ConnectionError("camera gone")

    seen = []
    with ThreadedReader(camera, retry=FAST, on_event=seen.append) as reader:
        frames = []
        with pytest.raises(VideoSourceError) as error:
            for frame in reader:
                frames.append(frame)
    assert [f.index for f in frames] == list(range(9))  # indexes keep increasing across reconnects
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
    assert _types(frames[5].events) == ["source_dropped", "source_dropped", "source_recovered"]
    assert [e for f in frames for e in f.events] == seen[:3]  # the events ride on the next frame
    dropped = [e for e in seen if e["event"] == "source_dropped"]
    assert [e["attempt"] for e in dropped] == [1, 2, 1, 2, 3, 4]  # the count restarts after a recovery
    assert "ConnectionError: link lost" in dropped[0]["error"] and "OSError: camera busy" in dropped[1]["error"]
    assert "ended at frame 9" in dropped[2]["error"]
    assert seen[2]["attempts"] == 2 and seen[2]["frame_index"] == 5
    assert [e["retry_in_s"] for e in dropped] == [0.01, 0.02, 0.01, 0.02, 0.04, None]  # exponential, then give up
    assert np.diff(calls)[-1] >= 0.04  # the backoff was waited
    message = str(error.value)
    assert "source factory" in message and "camera" in message and "4 attempts in a row" in message
    assert isinstance(error.value.__cause__, ConnectionError) and "camera gone" in message
    assert len(calls) == 6 and _gone(reader.threads)  # 3 openings, then 3 retries of the dead one


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["end", "raise"])), min_size=1, max_size=6))
def test_any_script_of_drops_keeps_indexes_and_counts_events(script):
    """Opening k yields script[k][0] frames, then ends or raises; after the script the source stays down."""
    calls = []

    def camera():
        calls.append(1)
        if len(calls) > len(script):
            raise ConnectionError("down for good")
        count, outcome = script[len(calls) - 1]
        yield from (_frame(i) for i in range(count))
        if outcome == "raise":
            raise ConnectionError(f"drop {len(calls)}")

    # What should happen: each opening's frames, one drop per opening, a recovery at the first frame
    # after drops, and the end once max_retries + 1 openings in a row gave no frame.
    policy = RetryPolicy(max_retries=2, initial_backoff_s=0, max_backoff_s=0, jitter=0)
    total, failures, expected = 0, 0, []
    for count, _ in itertools.chain(script, itertools.repeat((0, "raise"))):
        if count and failures:
            expected.append(("source_recovered", failures, total))
            failures = 0
        total += count
        failures += 1
        expected.append(("source_dropped", failures, total))
        if failures > policy.max_retries:
            break
    seen, frames = [], []
    with pytest.raises(VideoSourceError, match="3 attempts in a row"):
        with ThreadedReader(camera, retry=policy, on_event=seen.append) as reader:
            frames.extend(reader)
    assert [f.index for f in frames] == list(range(total))
    assert [(e["event"], e.get("attempt", e.get("attempts")), e["frame_index"]) for e in seen] == expected
    for frame in frames:  # each event rides on the first frame after it
        assert all(e["frame_index"] == frame.index for e in frame.events)
    assert _gone(reader.threads)


def test_stream_attaches_source_events_to_results(pipe):
    calls = []

    def camera():
        calls.append(1)
        yield from (_frame(i) for i in range(3))
        if len(calls) == 1:
            raise ConnectionError("link lost")

    results = []
    for result in pipe.stream(camera, batch_frames=2, retry=FAST):
        results.append(result)
        if len(results) == 7:
            break
    assert [r.index for r in results] == list(range(7))
    assert _types(results[3].events) == ["source_dropped", "source_recovered"]  # mid-batch, on its own frame
    assert _types(results[6].events) == ["source_dropped", "source_recovered"]  # the 2nd opening ended: a drop too
    assert all(not _types(r.events) for i, r in enumerate(results) if i not in (3, 6))


def test_stall_of_retryable_source_abandons_thread_and_reconnects(release):
    calls = []

    def camera():
        calls.append(1)
        yield from (_frame(i) for i in range(3))
        if len(calls) == 1:
            release.wait()  # a decode blocked for good: only the stall timeout gets the stream out

    started = time.monotonic()
    with ThreadedReader(camera, retry=FAST, stall_timeout=0.5) as reader:
        frames = list(itertools.islice(reader, 5))
        took = time.monotonic() - started
        stalled = reader.threads[0]
    assert [f.index for f in frames] == list(range(5))
    drop, recovery = frames[3].events
    assert drop["event"] == "source_dropped" and "stalled: no frame for 0.5 s at frame 3" in drop["error"]
    assert recovery["event"] == "source_recovered"
    assert 0.5 <= took < 3.0
    assert stalled.is_alive()  # abandoned, not joined...
    release.set()
    assert _gone([stalled])  # ...and it exits on its own stop flag once its read returns


def test_stall_of_plain_iterable_raises(release):
    def frames():
        yield from (_frame(i) for i in range(2))
        release.wait()

    started = time.monotonic()
    got = []
    with pytest.raises(VideoSourceError, match=r"stalled: no frame for 0.3 s at frame 2.*stall_timeout"):
        with ThreadedReader(frames(), stall_timeout=0.3) as reader:
            got.extend(reader)
    assert len(got) == 2 and time.monotonic() - started < 2.0
    release.set()
    assert _gone(reader.threads)


@pytest.mark.parametrize("how", ["pipeline_stop", "stop_event"])
def test_stop_from_another_thread_ends_infinite_stream(pipe, how):
    event = threading.Event()
    stop = pipe.stop if how == "pipeline_stop" else event.set
    before = _decode_threads()
    timer = threading.Timer(0.3, stop)
    timer.start()
    started, count = time.monotonic(), 0
    for _ in pipe.stream(_endless(), batch_frames=2, stop_event=event):
        count += 1
        assert time.monotonic() - started < 10, "the stream did not stop"
    assert count > 0 and count % 2 == 0  # it ended after a whole batch
    assert _gone(_decode_threads() - before)
    assert not pipe._readers


def test_breaking_out_or_closing_stops_decode_thread(pipe):
    before = _decode_threads()
    for result in pipe.stream(_endless()):
        if result.index == 3:
            break
    assert _gone(_decode_threads() - before)
    results = pipe.stream(_endless())
    next(results)
    started = _decode_threads() - before
    assert started and all(t.is_alive() for t in started)
    results.close()
    assert _gone(started) and not pipe._readers


def _raises_at_3():
    for i in range(10):
        if i == 3:
            raise RuntimeError("sensor fault")
        yield _frame(i)


def _bad_frame_at_2():
    for i in range(10):
        yield np.zeros((48, 64, 3), np.float32) if i == 2 else _frame(i)


@pytest.mark.parametrize(
    "source, error, cause, where",
    [
        (_raises_at_3, VideoSourceError, RuntimeError, "at frame 3"),
        (_bad_frame_at_2, InvalidInputError, InvalidInputError, "frame 2"),
    ],
)
def test_decode_thread_errors_reach_caller_with_cause_and_index(pipe, source, error, cause, where):
    before = _decode_threads()
    results = []
    with pytest.raises(error, match=where) as raised:
        for result in pipe.stream(source(), batch_frames=1):
            results.append(result)
    assert isinstance(raised.value.__cause__, cause)
    assert len(results) == int(where[-1])  # every frame before the fault was processed
    assert _gone(_decode_threads() - before)


def test_bad_frame_from_factory_is_not_retried(pipe):
    seen = []
    with pytest.raises(InvalidInputError, match="frame 2"):
        list(pipe.stream(_bad_frame_at_2, retry=FAST, on_event=seen.append))
    assert seen == []  # a bug in the source, not a drop


def test_pipeline_stage_error_propagates_and_stops_decode_thread(pipe, monkeypatch):
    detect = pipe.detector.detect
    calls = []

    def failing_detect(frames):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("detector failed")
        return detect(frames)

    monkeypatch.setattr(pipe.detector, "detect", failing_detect)
    before = _decode_threads()
    with pytest.raises(RuntimeError, match="detector failed"):
        for _ in pipe.stream(_endless()):
            pass
    assert _gone(_decode_threads() - before) and not pipe._readers


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("source", ["rtsp://admin:secret@127.0.0.1:9/x", "http://127.0.0.1:{port}/v.avi", 99])
def test_unreachable_source_gives_up_after_retries(pipe, source):
    if isinstance(source, str):
        source = source.format(port=_closed_port())
    seen = []
    started = time.monotonic()
    with pytest.raises(VideoSourceError, match="3 attempts in a row") as error:
        list(pipe.stream(source, retry=RetryPolicy(max_retries=2, initial_backoff_s=0.05), on_event=seen.append))
    assert time.monotonic() - started < 5.0
    assert [e["attempt"] for e in seen] == [1, 2, 3] and _types(seen) == ["source_dropped"] * 3
    assert isinstance(error.value.__cause__, VideoSourceError) and "cannot open" in str(error.value)
    assert "secret" not in str(error.value) and "secret" not in seen[0]["source"]  # credentials are masked
    seen.clear()
    with pytest.raises(VideoSourceError, match="cannot open"):  # retry=False: the first failure is final
        list(pipe.stream(source, retry=False, on_event=seen.append))
    assert seen == []


class _FlakyVideoServer(http.server.ThreadingHTTPServer):
    """Serves one .avi: the 1st connection is cut half-way, the 2nd stalls, the rest are whole."""

    daemon_threads = True

    def __init__(self, video: bytes, release: threading.Event):
        self.video, self.release, self.connections = video, release, 0
        super().__init__(("127.0.0.1", 0), _FlakyHandler)


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.connections += 1
        video = server.video
        self.send_response(200)
        self.send_header("Content-Type", "video/x-msvideo")
        self.send_header("Content-Length", str(len(video)))
        self.end_headers()
        if server.connections == 1:
            self.wfile.write(video[: len(video) // 2])  # then hang up mid-file
            self.close_connection = True
        elif server.connections == 2:
            self.wfile.write(video[: len(video) // 3])
            self.wfile.flush()
            server.release.wait(30)  # silent but connected: a stall
        else:
            self.wfile.write(video)

    def log_message(self, *args):
        pass


@pytest.mark.skipif(not cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG), reason="OpenCV built without FFmpeg")
def test_real_http_stream_drops_stalls_and_recovers(pipe, tmp_path, release):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(30):  # noise: big JPEGs, so that the cuts below fall mid-stream, after the header
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    server = _FlakyVideoServer(path.read_bytes(), release)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    before = _decode_threads()
    results, seen = [], []
    started = time.monotonic()
    try:
        for result in pipe.stream(url, retry=FAST, stall_timeout=1.0, on_event=seen.append):
            results.append(result)
            recoveries = [e for e in seen if e["event"] == "source_recovered"]
            if len(recoveries) == 2 and result.index >= recoveries[1]["frame_index"] + 10:
                break
            assert time.monotonic() - started < 20
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert server.connections >= 3
    assert [r.index for r in results] == list(range(len(results)))
    assert np.all(np.diff([r.timestamp for r in results]) >= 0)
    assert _types(seen) == ["source_dropped", "source_recovered"] * 2
    first, second = seen[0], seen[2]
    assert 0 < first["frame_index"] < 30 and "ended" in first["error"]  # the cut connection
    assert second["frame_index"] > first["frame_index"]
    assert "stalled" in second["error"] or "ended" in second["error"]  # our stall timer or FFmpeg's read timeout
    events_on_results = [e for r in results for e in r.events if e["event"].startswith("source_")]
    assert events_on_results == seen
    assert _gone(_decode_threads() - before)


# ---- hostile input (issue 15, 3.1, 3.2, 3.5, 3.9) ---------------------------------------------------------


def test_hostile_stream_arguments_are_refused_in_the_callers_thread(pipe):
    with pytest.raises(InvalidInputError, match="webcam index -1"):  # cv2.VideoCapture(-1) segfaulted
        next(pipe.stream(-1))
    with pytest.raises(InvalidInputError, match="max_queue"):  # 0 made the decode queue unbounded
        next(pipe.stream(_endless, max_queue=0))
    with pytest.raises(InvalidInputError, match="batch_frames=0"):  # 0 silently meant the default
        next(pipe.stream(_endless, batch_frames=0))
    with pytest.raises(InvalidInputError, match="multiplier"):
        RetryPolicy(multiplier=float("nan"))


HANGING_RTSP = r"""
import socket, sys, threading
from fhsdk.video import ThreadedReader
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
accepted = []  # accepts, then never answers: FFmpeg blocks in its open until its own timeout
threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
reader = ThreadedReader(f"rtsp://127.0.0.1:{server.getsockname()[1]}/cam", stall_timeout=2)
frames = threading.Thread(target=lambda: list(reader))
frames.start()
while not accepted:
    threading.Event().wait(0.02)
reader.stop()  # what Pipeline.stop() does
frames.join()
print("stopped", flush=True)
"""


def test_stop_while_ffmpeg_blocks_opening_then_exit_does_not_abort():
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", HANGING_RTSP],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    # before: "terminate called without an active exception", exit 134, as the decode thread was unwound
    # through OpenCV at interpreter exit
    assert done.returncode == 0, done.stderr
    assert "stopped" in done.stdout and "terminate called" not in done.stderr
