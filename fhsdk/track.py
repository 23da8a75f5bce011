"""Tracking and temporal fusion: faces linked across frames, identities decided on the whole track.

Association is one assignment problem per frame (Hungarian) over a cost that mixes box overlap and
embedding similarity, so a face that jumps (a dropped frame) can still be linked by its looks.
Each track keeps a running embedding sum weighted by face size and detection score: a person seen as
many tiny faces is matched on that fused embedding, which is steadier than any single frame's.

A fused name must never wander onto someone else, so:
  - a shot change (the caller says so, see fhsdk.shots) ends every track: nobody is carried across a cut;
  - a face whose embedding is far from its track's (an appearance jump) starts a new track instead;
  - fused evidence decays (`decay` per frame), so the track's identity follows its recent faces;
  - a fused name is given to a face only if the face on its own agrees: its own best gallery match is
    that identity, within `evidence_margin` of the threshold. Face.identity_source says whether a name
    comes from this frame ("frame") or needed the track ("track").
Tracks end with a 'lost' event: unseen for `max_age` frames, at a shot change, or at the end of the
stream (`finish`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from fhsdk.detect.nms import box_overlap_np
from fhsdk.results import Face


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    last_frame: int
    first_frame: int
    embedding_sum: np.ndarray
    weight: float
    identity: str | None = None
    similarity: float = float("nan")
    hits: int = 1

    @property
    def embedding(self) -> np.ndarray:
        return self.embedding_sum / max(np.linalg.norm(self.embedding_sum), 1e-12)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N x 4) with every box in b (M x 4)."""
    return box_overlap_np(a, b, "union")


@dataclass
class Tracker:
    max_age: int = 15  # frames a track survives unseen
    min_iou: float = 0.1
    # Cosines are on the recogniser's scale (dlib: one person's faces in consecutive frames of the real
    # clip are >= 0.83 apart, median 0.99; dlib's own same-person line d = 0.6 is cosine 0.82).
    min_cosine: float = 0.9  # linking without box overlap needs this much embedding similarity
    min_link_cosine: float = 0.8  # any link: below this the face is someone else (an appearance jump)
    appearance_weight: float = 0.5
    fuse: bool = True
    decay: float = 0.9  # per frame: fused evidence halves in ~7 frames (0.2 s at 30 fps)
    evidence_margin: float = 0.07  # a fused name needs the face's own similarity >= threshold - this
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(
        self, frame_index: int, faces: list[Face], gallery=None, threshold: float = 0.0, shot_change: bool = False
    ) -> list[dict]:
        """Assign track ids to `faces` (with embeddings), fuse, re-match, expire; return events.

        shot_change=True (the frame starts a new shot) ends every open track first.
        """
        events: list[dict] = []
        if shot_change:
            events.append({"event": "shot_change", "frame": frame_index})
            events += self._end(list(self.tracks), frame_index, "shot_change")
        assigned = self._associate(faces)
        face_tracks = []
        for face_index, face in enumerate(faces):
            track = assigned.get(face_index)
            weight = float(face.size_px * face.score)
            if track is None:
                track = Track(self._next_id, face.box.copy(), frame_index, frame_index, face.embedding * weight, weight)
                self._next_id += 1
                self.tracks.append(track)
                events.append({"event": "first_seen", "frame": frame_index, "track_id": track.track_id})
            else:
                kept = self.decay ** max(frame_index - track.last_frame, 0)
                track.embedding_sum = kept * track.embedding_sum + face.embedding * weight
                track.weight = kept * track.weight + weight
                track.box, track.last_frame, track.hits = face.box.copy(), frame_index, track.hits + 1
            face.track_id = track.track_id
            face_tracks.append(track)
        if self.fuse and gallery is not None and len(gallery) and faces:
            self._name_from_tracks(faces, face_tracks, gallery, threshold)
        for face, track in zip(faces, face_tracks):
            if face.identity is not None and face.identity != track.identity:
                events.append(
                    {
                        "event": "identified",
                        "frame": frame_index,
                        "track_id": track.track_id,
                        "identity": face.identity,
                        "similarity": round(float(face.similarity), 4),
                        "source": face.identity_source,
                    }
                )
            track.identity = face.identity if face.identity is not None else track.identity
        events += self._end(
            [t for t in self.tracks if frame_index - t.last_frame > self.max_age], frame_index, "unseen"
        )
        return events

    def finish(self, frame_index: int) -> list[dict]:
        """End every open track (the source ended); returns their 'lost' events."""
        return self._end(list(self.tracks), frame_index, "end_of_stream")

    def _name_from_tracks(self, faces, face_tracks, gallery, threshold: float) -> None:
        """Every face is matched on its track's fused embedding (one search), and keeps the fused name
        only with its own evidence; otherwise its own per-frame match stands."""
        embeddings = np.stack([face.embedding for face in faces])
        own = gallery.match(embeddings, -np.inf)  # each face's best identity, whatever its similarity
        fused = gallery.match(np.stack([track.embedding for track in face_tracks]), threshold)
        for face, mine, together in zip(faces, own, fused):
            if (
                together.identity is not None
                and mine.identity == together.identity
                and mine.similarity >= threshold - self.evidence_margin
            ):
                face.identity, face.similarity = together.identity, together.similarity
                face.identity_source = "frame" if mine.similarity >= threshold else "track"

    def _end(self, tracks: list[Track], frame_index: int, reason: str) -> list[dict]:
        events = []
        for track in tracks:
            events.append(
                {
                    "event": "lost",
                    "frame": frame_index,
                    "track_id": track.track_id,
                    "identity": track.identity,
                    "frames_seen": track.hits,
                    "reason": reason,
                }
            )
            self.tracks.remove(track)
        return events

    def _associate(self, faces: list[Face]) -> dict[int, Track]:
        if not faces or not self.tracks:
            return {}
        boxes = np.stack([f.box for f in faces])
        iou = box_iou(np.stack([t.box for t in self.tracks]), boxes)
        cosine = np.stack([t.embedding for t in self.tracks]) @ np.stack([f.embedding for f in faces]).T
        allowed = ((iou >= self.min_iou) | (cosine >= self.min_cosine)) & (cosine >= self.min_link_cosine)
        score = np.where(allowed, iou + self.appearance_weight * cosine, -1e6)
        rows, cols = linear_sum_assignment(-score)
        return {int(c): self.tracks[int(r)] for r, c in zip(rows, cols) if allowed[r, c]}
