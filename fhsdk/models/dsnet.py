"""DSNet, FH-GAN's generator (Bayramli et al., "FH-GAN: Face Hallucination and Recognition using
Generative Adversarial Network").

Sparse blocks in the manner of SparseNet: layer i of a block takes the outputs of layers i-1, i-2,
i-4, ... (powers of two back; layer 0 is the block input), which keeps dense-style feature reuse
with far fewer connections. The outputs of all blocks are concatenated, fused by a 1x1 bottleneck,
upsampled by sub-pixel convolution and reconstructed to RGB.
"""

from __future__ import annotations

import torch
from torch import nn

from fhsdk.models.edsr import pixel_shuffle_upsampler
from fhsdk.models.registry import register_model


def sparse_inputs(i: int) -> list[int]:
    """Indices of the earlier outputs (0 = block input) that layer i (1-based) aggregates."""
    return [i - 2**k for k in range(i.bit_length()) if i - 2**k >= 0]


class SparseBlock(nn.Module):
    def __init__(self, in_channels: int, num_layers: int, growth_rate: int):
        super().__init__()
        channels = [in_channels] + [growth_rate] * num_layers
        self.inputs = [sparse_inputs(i) for i in range(1, num_layers + 1)]
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(sum(channels[j] for j in idx), growth_rate, 3, padding=1),
                nn.PReLU(growth_rate),
            )
            for idx in self.inputs
        )
        # The block's output aggregates like a virtual layer L+1 would.
        self.out_inputs = sparse_inputs(num_layers + 1)
        self.out_channels = sum(channels[j] for j in self.out_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for idx, layer in zip(self.inputs, self.layers):
            outputs.append(layer(torch.cat([outputs[j] for j in idx], dim=1)))
        return torch.cat([outputs[j] for j in self.out_inputs], dim=1)


class DSNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        num_features: int = 64,
        num_blocks: int = 8,
        layers_per_block: int = 8,
        growth_rate: int = 16,
        bottleneck_features: int = 256,
        in_channels: int = 3,
    ):
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_features, 3, padding=1), nn.PReLU(num_features))
        blocks, block_channels, channels = [], [num_features], num_features
        for _ in range(num_blocks):
            block = SparseBlock(channels, layers_per_block, growth_rate)
            blocks.append(block)
            channels = block.out_channels
            block_channels.append(channels)
        self.blocks = nn.ModuleList(blocks)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(sum(block_channels), bottleneck_features, 1), nn.PReLU(bottleneck_features)
        )
        self.upsample = pixel_shuffle_upsampler(bottleneck_features, scale, activation=nn.PReLU(bottleneck_features))
        self.tail = nn.Conv2d(bottleneck_features, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.head(x)]
        for block in self.blocks:
            features.append(block(features[-1]))
        return self.tail(self.upsample(self.bottleneck(torch.cat(features, dim=1))))


@register_model("dsnet")
def dsnet(**kwargs) -> DSNet:
    return DSNet(**kwargs)
