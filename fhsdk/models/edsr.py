"""EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017),
the generator of Lai, He and Lam's identity-preserved face hallucination (ICIP 2019).

Residual blocks without batch norm, residual scaling, a global skip and sub-pixel upsampling.
With `bicubic_skip=True` (our deployment default, not in the paper) the network predicts a residual
over the bicubic upsampling of its input and its last layer starts at zero, so an untrained model is
exactly bicubic and training can only move it from there: short CPU runs then improve on bicubic
instead of first having to relearn it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fhsdk.models.registry import register_model


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


def pixel_shuffle_upsampler(channels: int, scale: int, activation: nn.Module | None = None) -> nn.Sequential:
    """Sub-pixel convolution: x2 stages for powers of two, one x3 stage for 3."""
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        factors = [2] * int(math.log2(scale))
    elif scale == 3:
        factors = [3]
    else:
        raise ValueError(f"sub-pixel upsampling supports scale 2, 3, 4, 8 or 16, got {scale}")
    for factor in factors:
        layers += [nn.Conv2d(channels, channels * factor**2, 3, padding=1), nn.PixelShuffle(factor)]
        if activation is not None:
            layers.append(activation)
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        num_features: int = 64,
        num_blocks: int = 16,
        res_scale: float = 1.0,
        in_channels: int = 3,
        rgb_mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        bicubic_skip: bool = False,
    ):
        super().__init__()
        self.scale = scale
        # EDSR subtracts the training set's mean colour and adds it back at the end.
        self.register_buffer("rgb_mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.head = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(
            *(ResidualBlock(num_features, res_scale) for _ in range(num_blocks)),
            nn.Conv2d(num_features, num_features, 3, padding=1),
        )
        self.upsample = pixel_shuffle_upsampler(num_features, scale)
        self.tail = nn.Conv2d(num_features, in_channels, 3, padding=1)
        self.bicubic_skip = bicubic_skip
        if bicubic_skip:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x - self.rgb_mean)
        features = features + self.body(features)
        residual = self.tail(self.upsample(features))
        if self.bicubic_skip:
            return residual + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return residual + self.rgb_mean


@register_model("edsr")
def edsr(**kwargs) -> EDSR:
    return EDSR(**kwargs)
