"""RRDBNet (Wang et al., "ESRGAN", ECCV Workshops 2018), the generator of IP-FSRGAN (Li et al.).

Residual-in-residual dense blocks: three 5-conv dense blocks (LeakyReLU 0.2), each scaled by 0.2 into
its residual, and the three wrapped in another 0.2-scaled residual; nearest-neighbour x2 upsampling
followed by convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fhsdk.models.registry import register_model


class ResidualDenseBlock(nn.Module):
    def __init__(self, channels: int, growth_rate: int, res_scale: float):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth_rate, growth_rate if i < 4 else channels, 3, padding=1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:-1]:
            features.append(self.act(conv(torch.cat(features, dim=1))))
        return x + self.res_scale * self.convs[-1](torch.cat(features, dim=1))


class RRDB(nn.Module):
    def __init__(self, channels: int, growth_rate: int, res_scale: float):
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(channels, growth_rate, res_scale) for _ in range(3)))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.blocks(x)


class RRDBNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        num_features: int = 64,
        num_blocks: int = 23,
        growth_rate: int = 32,
        res_scale: float = 0.2,
        in_channels: int = 3,
    ):
        super().__init__()
        stages = int(round(math.log2(scale)))
        if scale < 2 or 2**stages != scale:
            raise ValueError(f"RRDBNet upsamples in x2 stages: scale must be 2, 4, 8 or 16, got {scale}")
        self.scale = scale
        self.head = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(
            *(RRDB(num_features, growth_rate, res_scale) for _ in range(num_blocks)),
            nn.Conv2d(num_features, num_features, 3, padding=1),
        )
        self.up_convs = nn.ModuleList(nn.Conv2d(num_features, num_features, 3, padding=1) for _ in range(stages))
        self.hr_conv = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.tail = nn.Conv2d(num_features, in_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        features = features + self.body(features)
        for conv in self.up_convs:
            features = self.act(conv(F.interpolate(features, scale_factor=2, mode="nearest")))
        return self.tail(self.act(self.hr_conv(features)))


@register_model("rrdb")
def rrdb(**kwargs) -> RRDBNet:
    return RRDBNet(**kwargs)
