"""Tracking and temporal fusion: faces linked across frames, identities decided on the whole track.

Association is one assignment problem per frame (Hungarian) over a cost that mixes box overlap and
embedding similarity, so a face that jumps (a dropped frame) can still be linked by its looks.
Each track keeps a running embedding sum weighted by face size and detection score: a person seen as
many tiny faces is matched on that fused embedding, which is steadier than any single frame's.
Tracks unseen for `max_age` frames end with a 'lost' event.
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
    min_cosine: float = 0.5  # linking without overlap needs this much embedding similarity
    appearance_weight: float = 0.5
    fuse: bool = True
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, frame_index: int, faces: list[Face], gallery=None, threshold: float = 0.0) -> list[dict]:
        """Assign track ids to `faces` (with embeddings), fuse, re-match, expire; return events."""
        events: list[dict] = []
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
                track.box, track.last_frame, track.hits = face.box.copy(), frame_index, track.hits + 1
                track.embedding_sum = track.embedding_sum + face.embedding * weight
                track.weight += weight
            face.track_id = track.track_id
            face_tracks.append(track)
        if self.fuse and gallery is not None and len(gallery) and faces:
            # every face of the frame is matched on its track's fused embedding, in one search
            fused = gallery.match(np.stack([track.embedding for track in face_tracks]), threshold)
            for face, match in zip(faces, fused):
                face.identity, face.similarity = match.identity, match.similarity
        for face, track in zip(faces, face_tracks):
            if face.identity is not None and face.identity != track.identity:
                events.append({"event": "identified", "frame": frame_index, "track_id": track.track_id,
                               "identity": face.identity, "similarity": round(float(face.similarity), 4)})
            track.identity = face.identity if face.identity is not None else track.identity
        for track in [t for t in self.tracks if frame_index - t.last_frame > self.max_age]:
            events.append({"event": "lost", "frame": frame_index, "track_id": track.track_id,
                           "identity": track.identity, "frames_seen": track.hits})
            self.tracks.remove(track)
        return events

    def _associate(self, faces: list[Face]) -> dict[int, Track]:
        if not faces or not self.tracks:
            return {}
        boxes = np.stack([f.box for f in faces])
        iou = box_iou(np.stack([t.box for t in self.tracks]), boxes)
        cosine = np.stack([t.embedding for t in self.tracks]) @ np.stack([f.embedding for f in faces]).T
        allowed = (iou >= self.min_iou) | (cosine >= self.min_cosine)
        score = np.where(allowed, iou + self.appearance_weight * cosine, -1e6)
        rows, cols = linear_sum_assignment(-score)
        return {int(c): self.tracks[int(r)] for r, c in zip(rows, cols) if allowed[r, c]}
