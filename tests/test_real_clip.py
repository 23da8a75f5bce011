"""The real clip across a scene cut: a name must not be carried from the performer onto the audience.

Frames 203-216 of hamilton_clip.mp4 hold the end of the performer's shot and the start of the audience
shot (Barack Obama's face where the performer's was; the cut is after frame 210, per
benchmarks/data/hamilton_clip_labels.csv, made by looking at every frame). Before shot changes ended
tracks, fusion named the performer on the audience shot at 0.97.
"""

import csv
import itertools
from pathlib import Path

import cv2
import pytest

from fhsdk.shots import ShotChangeDetector
from fhsdk.video import iterate_source

LABELS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "hamilton_clip_labels.csv"
FIRST, LAST = 203, 216


def _labels() -> dict[int, dict]:
    with LABELS.open() as handle:
        return {int(r["frame"]): r for r in csv.DictReader(line for line in handle if not line.startswith("#"))}


@pytest.fixture(scope="module")
def clip(video_dir):
    return [f.image for f in iterate_source(str(video_dir / "hamilton_clip.mp4"))]


def test_labels_cover_every_frame_and_mark_the_cuts():
    labels = _labels()
    assert sorted(labels) == list(range(275))
    cuts = [i for i in range(1, 275) if labels[i]["shot"] != labels[i - 1]["shot"]]
    assert cuts == [20, 82, 211]
    assert all(labels[i]["performer_visible"] == "0" for i in range(211, 275))


def test_shot_changes_are_found_exactly_at_the_labelled_cuts(clip):
    labels = _labels()
    truth = [i for i in range(1, len(clip)) if labels[i]["shot"] != labels[i - 1]["shot"]]
    detector = ShotChangeDetector()
    assert [i for i, frame in enumerate(clip) if detector(frame)] == truth
    detector = ShotChangeDetector()  # and at x8, after the area downscale a distant camera gives
    small = [cv2.resize(f, (80, 45), interpolation=cv2.INTER_AREA) for f in clip]
    assert [i for i, frame in enumerate(small) if detector(frame)] == truth


def test_no_name_crosses_the_cut_into_the_audience_shot(clip, video_dir):
    import fhsdk

    labels = _labels()
    pipe = fhsdk.Pipeline(hallucinator="bicubic")
    pipe.enroll("performer", [str(video_dir / "gallery" / "lin_manuel_miranda.png")])
    named = {}
    events = []
    for result in itertools.islice(pipe.stream(iter(clip[FIRST : LAST + 1]), batch_frames=4), None):
        index = FIRST + result.index
        named[index] = [f for f in result.faces if f.identity == "performer"]
        events += result.events
    assert any(named[i] for i in range(FIRST, 211))  # he is named before the cut
    wrong = [i for i in range(211, LAST + 1) if named[i]]
    assert wrong == [], f"the performer was named on the audience shot in frames {wrong}"
    assert labels[211]["performer_visible"] == "0"
    assert {"event": "shot_change", "frame": 211 - FIRST} in events
    assert events[-1]["event"] == "lost" and events[-1]["reason"] == "end_of_stream"
