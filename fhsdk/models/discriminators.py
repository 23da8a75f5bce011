"""VGG-style discriminators for face hallucination GANs.

One network serves the three adversarial formulations the training framework uses: it returns raw
scores (no sigmoid), which a standard GAN reads through BCE-with-logits, a relativistic-average GAN
compares against the other batch's mean, and a WGAN critic uses as is. WGAN-GP's penalty is per
sample, so a critic must not use batch norm: pick `norm="layer"`, `"instance"` or `"none"`.

`head="global"` gives one score per image (SRGAN/ESRGAN style), `head="patch"` a score map.
"""

from __future__ import annotations

import torch
from torch import nn

from fhsdk.models.registry import register_model

NORMS = ("batch", "instance", "layer", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # one group = layer norm over C, H, W
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown discriminator norm '{kind}': choose one of {', '.join(NORMS)}")


class VGGDiscriminator(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        num_stages: int = 4,
        norm: str = "batch",
        head: str = "global",
        hidden: int = 100,
    ):
        super().__init__()
        if head not in ("global", "patch"):
            raise ValueError(f"unknown discriminator head '{head}': choose 'global' or 'patch'")
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_features, 3, padding=1), act()]
        channels = num_features
        # Each stage halves the side; channels double up to 8x the base width.
        for stage in range(num_stages):
            out = num_features * min(2 ** (stage + 1), 8)
            layers += [
                nn.Conv2d(channels, channels, 4, stride=2, padding=1, bias=norm == "none"),
                _norm(norm, channels),
                act(),
                nn.Conv2d(channels, out, 3, padding=1, bias=norm == "none"),
                _norm(norm, out),
                act(),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        if head == "global":
            # Pool to a fixed 4x4 grid so any input side works.
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(channels * 16, hidden), act(), nn.Linear(hidden, 1)
            )
        else:
            self.head = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("vgg_discriminator")
def vgg_discriminator(**kwargs) -> VGGDiscriminator:
    return VGGDiscriminator(**kwargs)
