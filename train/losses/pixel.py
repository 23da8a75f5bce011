"""Pixel losses between SR and HR faces."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean absolute ('l1') or mean squared ('l2') error over all pixels."""
    if kind == "l1":
        return F.l1_loss(sr, hr)
    if kind == "l2":
        return F.mse_loss(sr, hr)
    raise ValueError(f"unknown pixel loss '{kind}': choose 'l1' or 'l2'")
