"""SRGAN's generator, SRResNet (Ledig et al., CVPR 2017), the backbone of C-Face (Han et al.).

9x9 head conv + PReLU, residual blocks conv-BN-PReLU-conv-BN, a global skip over the body, and
sub-pixel x2 stages with PReLU, then a 9x9 reconstruction conv.
"""

from __future__ import annotations

import torch
from torch import nn

from fhsdk.models.edsr import pixel_shuffle_upsampler
from fhsdk.models.registry import register_model


class BNResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, scale: int = 4, num_features: int = 64, num_blocks: int = 16, in_channels: int = 3):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 9, padding=4), nn.PReLU(num_features))
        self.body = nn.Sequential(
            *(BNResidualBlock(num_features) for _ in range(num_blocks)),
            nn.Conv2d(num_features, num_features, 3, padding=1, bias=False),
            nn.BatchNorm2d(num_features),
        )
        self.upsample = pixel_shuffle_upsampler(num_features, scale, activation=nn.PReLU(num_features))
        self.tail = nn.Conv2d(num_features, in_channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        return self.tail(self.upsample(features + self.body(features)))


@register_model("srgan")
def srgan(**kwargs) -> SRResNet:
    return SRResNet(**kwargs)
