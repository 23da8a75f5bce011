"""Per-stage timings of a batch without a synchronisation per stage.

On a CPU a stage's time is wall-clock time. On a GPU most work is queued asynchronously, so the
timer records a CUDA event on the current stream when a stage starts and ends and reads them all
once, when the batch is done (`seconds()` waits for the last event): the stages' times partition the
stream's timeline, and the GPU is never drained between stages just to time them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class StageTimer:
    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self._spans: list[tuple[str, object, object]] = []  # (stage, start mark, end mark)

    def _mark(self):
        if self.device.type != "cuda":
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))
        return event

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._mark()
        try:
            yield
        finally:
            self._spans.append((name, start, self._mark()))

    def seconds(self) -> dict[str, float]:
        """Total seconds per stage, summed over its spans (waits for the GPU once, on CUDA)."""
        totals: dict[str, float] = {}
        if self._spans and self.device.type == "cuda":
            self._spans[-1][2].synchronize()
        for name, start, end in self._spans:
            spent = end - start if self.device.type != "cuda" else start.elapsed_time(end) / 1e3
            totals[name] = totals.get(name, 0.0) + spent
        return totals
