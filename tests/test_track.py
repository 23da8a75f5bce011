"""Tracking and temporal fusion on synthetic faces whose boxes and embeddings we control."""

import numpy as np
import pytest

from fhsdk.gallery import Gallery
from fhsdk.results import Face
from fhsdk.track import Tracker, box_iou


def _unit(v):
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _face(box, embedding, size=16.0, score=0.99):
    return Face(
        box=np.array(box, np.float32),
        landmarks=np.zeros((5, 2)),
        score=score,
        size_px=size,
        embedding=_unit(np.asarray(embedding, np.float32)),
    )


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
        faces = [
            _face([10 + 8 * t, 50, 40 + 8 * t, 80], people[0]),
            _face([200 - 8 * t, 52, 230 - 8 * t, 82], people[1]),
        ]
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
    assert lost == [
        {"event": "lost", "frame": 7, "track_id": 1, "identity": None, "frames_seen": 2, "reason": "unseen"}
    ]
    assert tracker.tracks == []


def test_fusion_names_a_person_no_single_frame_names(people):
    """Each frame's embedding is the person's plus noise (cosine 0.90 < threshold 0.92);
    the size- and score-weighted track average is much closer to the person."""
    rng = np.random.default_rng(1)
    gallery = Gallery(128, "test")
    gallery.add("alice", people[0])
    gallery.add("bob", people[1])
    noisy = np.stack([_near(people[0], 0.9, seed=int(s)) for s in rng.integers(1 << 30, size=20)])
    single_frame = gallery.match(noisy, 0.92)
    assert all(m.identity is None for m in single_frame)
    assert np.median([m.similarity for m in single_frame]) == pytest.approx(0.9, abs=1e-5)

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
    rng = np.random.default_rng(2)
    other_look = _unit(people[0] + 0.6 * _unit(rng.standard_normal(128)))  # same track, a poor view of it
    tracker.update(1, [_face([11, 10, 41, 40], other_look, size=8.0, score=0.7)])
    track = tracker.tracks[0]
    assert float(track.embedding @ people[0]) > 0.95  # the big, confident face dominates


def _alice_and_bob(people):
    gallery = Gallery(128, "test")
    gallery.add("alice", people[0])
    gallery.add("bob", people[1])
    return gallery


def _near(person, cosine, seed):
    """A unit vector at exactly `cosine` from `person`."""
    noise = np.random.default_rng(seed).standard_normal(person.shape)
    noise -= (noise @ person) * person
    return _unit(cosine * person + np.sqrt(1 - cosine**2) * _unit(noise))


def test_a_shot_change_ends_every_track_so_no_name_crosses_the_cut(people):
    """Before, the track that named alice in one shot went on naming whoever filled her box after a
    cut (the real clip's audience shot named the performer on someone else at 0.97)."""
    gallery = _alice_and_bob(people)
    tracker = Tracker()
    for t in range(10):
        tracker.update(t, [_face([100, 50, 140, 90], people[0])], gallery, 0.92)
    stranger = _near(people[0], 0.87, seed=3)  # looks alike (0.87 < 0.92), same place, after a cut
    face = _face([102, 50, 142, 90], stranger)
    events = tracker.update(10, [face], gallery, 0.92, shot_change=True)
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["shot_change", "lost"] and events[1]["reason"] == "shot_change"
    assert face.track_id != 1 and face.identity is None


def test_fused_name_needs_the_faces_own_evidence(people):
    """Without a cut, a face too unlike the name on its own (0.80, under threshold - margin) is not
    named from the track, and a link that jumps in appearance starts a new track."""
    gallery = _alice_and_bob(people)
    tracker = Tracker()
    for t in range(10):
        tracker.update(t, [_face([100, 50, 140, 90], people[0])], gallery, 0.92)
    unlike = _face([101, 50, 141, 90], _near(people[0], 0.84, seed=4))  # linked (>= 0.8), but weak evidence
    tracker.update(10, [unlike], gallery, 0.92)
    assert unlike.track_id == 1 and unlike.identity is None
    jump = _face([101, 50, 141, 90], _near(people[0], 0.6, seed=5))  # same box, someone else
    tracker.update(11, [jump], gallery, 0.92)
    assert jump.track_id != 1 and jump.identity is None


def test_fused_names_say_they_come_from_the_track_and_evidence_decays(people):
    gallery = _alice_and_bob(people)
    tracker = Tracker()
    faces = [_face([100, 50, 140, 90], _near(people[0], c, seed=10 + t)) for t, c in enumerate([0.99] * 5 + [0.9] * 3)]
    for t, face in enumerate(faces):
        tracker.update(t, [face], gallery, 0.92)
    assert faces[0].identity == "alice" and faces[0].identity_source == "frame"
    assert faces[5].identity == "alice" and faces[5].identity_source == "track"  # 0.90 alone: named by the track
    # decay: after many frames of weaker faces the fused embedding follows them, not the old strong ones
    decayed, flat = Tracker(), Tracker(decay=1.0)
    for tracker_ in (decayed, flat):
        for t in range(40):
            cosine = 0.99 if t < 5 else 0.9
            tracker_.update(t, [_face([100, 50, 140, 90], _near(people[0], cosine, seed=100 + t))], gallery, 0.92)
    assert float(decayed.tracks[0].embedding @ people[0]) < float(flat.tracks[0].embedding @ people[0])


def test_finish_closes_open_tracks(people):
    tracker = Tracker()
    tracker.update(0, [_face([10, 10, 40, 40], people[0]), _face([100, 10, 130, 40], people[1])])
    events = tracker.finish(0)
    assert [(e["event"], e["reason"]) for e in events] == [("lost", "end_of_stream")] * 2 and tracker.tracks == []
