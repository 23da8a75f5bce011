"""Box utilities in plain torch (no torchvision here): pairwise overlap, greedy NMS, batched NMS.

Boxes are (x1, y1, x2, y2) in pixel-edge coordinates: a box's width is x2 - x1.
"""

from __future__ import annotations

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


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union",
        groups: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, best score first.

    Each step keeps the best remaining box and drops the boxes overlapping it by more than
    `threshold`, so the loop runs once per *kept* box with a vectorised overlap per step. With
    `groups`, boxes only suppress boxes of their own group. Ties keep their input order (stable
    sort), so a group gives the same result alone or batched with others.
    """
    order = scores.argsort(descending=True, stable=True)
    keep = []
    while order.numel() > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        if rest.numel() == 0:
            break
        suppress = box_overlap(boxes[best][None], boxes[rest], mode)[0] > threshold
        if groups is not None:
            suppress &= groups[rest] == groups[best]
        order = rest[~suppress]
    if not keep:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    return torch.stack(keep)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float,
                mode: str = "union") -> torch.Tensor:
    """NMS within each group (e.g. image index) in one pass: boxes of different groups never suppress
    each other. Coordinates are left untouched (no per-group offset trick), so overlaps that sit
    exactly on the threshold, common for P-Net's grid of windows, resolve as they do per group."""
    return nms(boxes, scores, threshold, mode, groups)
