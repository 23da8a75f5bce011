"""Box utilities in plain torch (no torchvision here): pairwise overlap, greedy NMS, batched NMS.

Boxes are (x1, y1, x2, y2) in pixel-edge coordinates: a box's width is x2 - x1.
"""

from __future__ import annotations

import numpy as np
import torch

OVERLAP_MODES = ("union", "min")


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_overlap(a: torch.Tensor, b: torch.Tensor, mode: str = "union") -> torch.Tensor:
    """Pairwise overlap (len(a) x len(b)): intersection over union, or over the smaller area ('min')."""
    if mode not in OVERLAP_MODES:
        raise ValueError(f"mode must be one of {OVERLAP_MODES}, got {mode!r}")
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    area_a, area_b = box_area(a)[:, None], box_area(b)[None, :]
    denominator = area_a + area_b - inter if mode == "union" else torch.minimum(area_a, area_b)
    return inter / denominator.clamp(min=1e-9)


def box_overlap_np(a: np.ndarray, b: np.ndarray, mode: str = "union") -> np.ndarray:
    """`box_overlap` on NumPy arrays, with the same arithmetic (so float32 boxes give the same ties)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None))[:, None]
    area_b = (np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))[None, :]
    denominator = area_a + area_b - inter if mode == "union" else np.minimum(area_a, area_b)
    return inter / np.maximum(denominator, 1e-9)


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union", groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, best score first.

    Each step keeps the best remaining box and drops the boxes overlapping it by more than
    `threshold`, so the loop runs once per *kept* box with a vectorised overlap per step. With
    `groups`, boxes only suppress boxes of their own group. Ties keep their input order (stable
    sort), so a group gives the same result alone or batched with others.
    """
    if mode not in OVERLAP_MODES:
        raise ValueError(f"mode must be one of {OVERLAP_MODES}, got {mode!r}")
    order = scores.argsort(descending=True, stable=True)
    # The loop runs once per kept box, thousands of times on a 1080p pyramid: on small host arrays
    # NumPy's per-call cost is a fraction of torch's, so the loop works on NumPy copies.
    sorted_boxes = boxes[order].detach().cpu().float().numpy()  # float32, as box_overlap: same ties
    sorted_groups = groups[order].cpu().numpy() if groups is not None else None
    remaining = np.arange(len(sorted_boxes))
    keep = []
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        keep.append(best)
        suppress = box_overlap_np(sorted_boxes[best][None], sorted_boxes[rest], mode)[0] > threshold
        if sorted_groups is not None:
            suppress &= sorted_groups[rest] == sorted_groups[best]
        remaining = rest[~suppress]
    return order[torch.as_tensor(np.array(keep, dtype=np.int64), device=order.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float, mode: str = "union"
) -> torch.Tensor:
    """NMS within each group (e.g. image index) in one pass: boxes of different groups never suppress
    each other. Coordinates are left untouched (no per-group offset trick), so overlaps that sit
    exactly on the threshold, common for P-Net's grid of windows, resolve as they do per group."""
    return nms(boxes, scores, threshold, mode, groups)
