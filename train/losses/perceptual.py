"""Perceptual loss on a recogniser's intermediate feature maps.

ImageNet VGG weights cannot be downloaded here, so the feature extractor is the face recogniser itself
(as SICNN's UR-DGN* baseline did); see docs/TRAINING.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def perceptual_loss(
    sr_features: Sequence[torch.Tensor],
    hr_features: Sequence[torch.Tensor],
    weights: Sequence[float] | None = None,
    kind: str = "l1",
) -> torch.Tensor:
    """Weighted sum over layers of the mean L1 (or L2) distance between feature maps."""
    if len(sr_features) != len(hr_features) or not sr_features:
        raise ValueError("perceptual_loss needs the same non-empty list of layers for SR and HR")
    weights = [1.0] * len(sr_features) if weights is None else list(weights)
    distance = F.l1_loss if kind == "l1" else F.mse_loss
    return sum(w * distance(s, h.detach()) for w, s, h in zip(weights, sr_features, hr_features))
