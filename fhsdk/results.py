"""What the pipeline returns: faces and per-frame results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face.

    size_px is the side, in frame pixels, of the face's canonical region (the square the recogniser's
    chip covers); faces with size_px under the pipeline's gate_px are hallucinated before embedding.
    """

    box: np.ndarray  # x1, y1, x2, y2
    landmarks: np.ndarray  # 5 x 2
    score: float
    size_px: float
    hallucinated: bool = False
    identity: str | None = None
    similarity: float = float("nan")
    track_id: int | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    restored: np.ndarray | None = field(default=None, repr=False)  # the hallucinated HR crop (BGR)
    identity_source: str | None = None  # "frame": this face alone names it; "track": its track's fused evidence does

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "size_px": round(float(self.size_px), 1),
            "hallucinated": self.hallucinated,
            "identity": self.identity,
            "similarity": None if np.isnan(self.similarity) else round(float(self.similarity), 4),
            "identity_source": self.identity_source,
            "track_id": self.track_id,
        }


@dataclass
class FrameResult:
    index: int
    timestamp: float  # seconds from the start of the source
    faces: list[Face]
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds: its batch's time / frames in it
    # each event a dict whose "event" key names it: tracking (first_seen, identified, lost, shot_change) and
    # source (source_dropped, source_recovered) events
    events: list[dict] = field(default_factory=list)
    image: np.ndarray | None = field(default=None, repr=False)  # the decoded frame, with stream(keep_images=True)

    def to_dict(self) -> dict:
        return {"index": self.index, "timestamp": round(self.timestamp, 3), "faces": [f.to_dict() for f in self.faces]}
