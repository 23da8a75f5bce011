"""SICNN's hallucination network CNN-H (Zhang et al., "Super-Identity Convolutional Neural Network
for Face Hallucination", ECCV 2018).

Each x2 stage is a dense block (growth rate 32, PReLU) followed by a 1x1 compression and a
transposed convolution that doubles the side; a mapping conv and a reconstruction conv then give
the RGB face. The paper uses three stages (x8, 12x14 -> 96x112); `scale` picks the number of stages.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fhsdk.models.registry import register_model


def _stages(scale: int) -> int:
    stages = int(round(math.log2(scale)))
    if scale < 2 or 2**stages != scale:
        raise ValueError(f"SICNN upsamples by transposed x2 convolutions: scale must be 2, 4, 8 or 16, got {scale}")
    return stages


class DenseBlock(nn.Module):
    """Layer i sees the block input and every earlier layer's output (DenseNet connectivity)."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels + i * growth_rate, growth_rate, 3, padding=1),
                nn.PReLU(growth_rate),
            )
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class UpStage(nn.Module):
    """Dense block -> 1x1 compression -> 4x4 stride-2 transposed convolution (x2)."""

    def __init__(self, channels: int, num_layers: int, growth_rate: int):
        super().__init__()
        self.dense = DenseBlock(channels, num_layers, growth_rate)
        self.compress = nn.Sequential(nn.Conv2d(self.dense.out_channels, channels, 1), nn.PReLU(channels))
        self.deconv = nn.Sequential(nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.compress(self.dense(x)))


class SICNNGenerator(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        num_features: int = 64,
        growth_rate: int = 32,
        layers_per_block: int = 6,
        in_channels: int = 3,
    ):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 3, padding=1), nn.PReLU(num_features))
        self.stages = nn.Sequential(
            *(UpStage(num_features, layers_per_block, growth_rate) for _ in range(_stages(scale)))
        )
        self.mapping = nn.Sequential(nn.Conv2d(num_features, num_features, 3, padding=1), nn.PReLU(num_features))
        self.reconstruction = nn.Conv2d(num_features, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruction(self.mapping(self.stages(self.head(x))))


@register_model("sicnn")
def sicnn(**kwargs) -> SICNNGenerator:
    return SICNNGenerator(**kwargs)
