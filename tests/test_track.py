"""Tracking and temporal fusion on synthetic faces whose boxes and embeddings we control."""

import numpy as np
import pytest

from fhsdk.gallery import Gallery
from fhsdk.results import Face
from fhsdk.track import Tracker, box_iou


def _unit(v):
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _face(box, embedding, size=16.0, score=0.99):
    return Face(box=np.array(box, np.float32), landmarks=np.zeros((5, 2)), score=score, size_px=size,
                embedding=_unit(np.asarray(embedding, np.float32)))


@pytest.fixture
def people():
    return _unit(np.random.default_rng(0).standard_normal((2, 128)))


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]], atol=1e-6)


def test_two_people_crossing_keep_their_track_ids(people):
    tracker = Tracker()
    ids = {0: set(), 1: set()}
    for t in range(12):
        faces = [_face([10 + 8 * t, 50, 40 + 8 * t, 80], people[0]), _face([200 - 8 * t, 52, 230 - 8 * t, 82], people[1])]
        tracker.update(t, faces)
        ids[0].add(faces[0].track_id)
        ids[1].add(faces[1].track_id)
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1]


def test_a_face_that_jumps_is_linked_by_its_looks_and_a_stranger_is_not(people):
    tracker = Tracker()
    tracker.update(0, [_face([10, 10, 40, 40], people[0])])
    jumped = _face([300, 200, 330, 230], people[0])  # no overlap: a dropped frame, a fast walker
    stranger = _face([100, 150, 130, 180], people[1])  # no overlap either, and someone else
    tracker.update(1, [stranger, jumped])
    assert jumped.track_id == 1
    assert stranger.track_id == 2


def test_tracks_expire_with_a_lost_event(people):
    tracker = Tracker(max_age=5)
    first = tracker.update(0, [_face([10, 10, 40, 40], people[0])])
    assert [e["event"] for e in first] == ["first_seen"]
    tracker.update(1, [_face([11, 10, 41, 40], people[0])])
    for t in range(2, 7):
        assert tracker.update(t, []) == [] and len(tracker.tracks) == 1
    lost = tracker.update(7, [])
    assert lost == [{"event": "lost", "frame": 7, "track_id": 1, "identity": None, "frames_seen": 2}]
    assert tracker.tracks == []


def test_fusion_names_a_person_no_single_frame_names(people):
    """Each frame's embedding is the person's plus heavy noise (cosine ~0.85 < threshold 0.92);
    the size- and score-weighted track average is much closer to the person."""
    rng = np.random.default_rng(1)
    gallery = Gallery(128, "test")
    gallery.add("alice", people[0])
    gallery.add("bob", people[1])
    noisy = _unit(people[0] + 0.62 * _unit(rng.standard_normal((20, 128))))
    single_frame = gallery.match(noisy, 0.92)
    assert all(m.identity is None for m in single_frame)
    assert 0.8 < np.median([m.similarity for m in single_frame]) < 0.92

    fused, per_frame = Tracker(fuse=True), Tracker(fuse=False)
    named_fused = named_single = 0
    events = []
    for t, embedding in enumerate(noisy):
        a, b = _face([10 + t, 10, 40 + t, 40], embedding), _face([10 + t, 10, 40 + t, 40], embedding)
        events += fused.update(t, [a], gallery, 0.92)
        per_frame.update(t, [b], gallery, 0.92)
        named_fused += a.identity == "alice"
        named_single += b.identity == "alice"
    assert named_single == 0
    assert named_fused >= 12  # named once a few frames have been fused, and from then on
    assert [e for e in events if e["event"] == "identified"][0]["identity"] == "alice"


def test_fusion_weights_faces_by_size_and_score(people):
    tracker = Tracker()
    tracker.update(0, [_face([10, 10, 40, 40], people[0], size=40.0, score=0.99)])
    tracker.update(1, [_face([11, 10, 41, 40], people[1], size=8.0, score=0.7)])
    track = tracker.tracks[0]
    assert float(track.embedding @ people[0]) > 0.95  # the big, confident face dominates
