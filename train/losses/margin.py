"""Margin softmax heads for training the recogniser on identity labels.

Each head holds the class weights W (num_classes x D) and maps features + labels to logits for
cross-entropy. A-Softmax (SphereFace, m = 4) is SICNN's; ArcFace (s = 64, m = 0.5) is FH-GAN's;
CosFace (s = 64, m = 0.35) is the additive-cosine alternative.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _MarginHead(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1)).clamp(-1, 1)


class ArcFaceHead(_MarginHead):
    """Additive angular margin: the target logit is s * cos(theta + m) (Deng et al., CVPR 2019)."""

    def __init__(self, in_features: int, num_classes: int, s: float = 64.0, m: float = 0.5):
        super().__init__(in_features, num_classes)
        self.s, self.m = s, m

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(features)
        sin = (1 - cos.pow(2)).clamp_min(1e-12).sqrt()
        target = cos * math.cos(self.m) - sin * math.sin(self.m)
        # Past theta = pi - m, cos(theta + m) stops decreasing; use the linear fallback of insightface.
        target = torch.where(cos > math.cos(math.pi - self.m), target, cos - math.sin(math.pi - self.m) * self.m)
        one_hot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return self.s * (one_hot * target + (1 - one_hot) * cos)


class CosFaceHead(_MarginHead):
    """Additive cosine margin: the target logit is s * (cos(theta) - m) (Wang et al., CVPR 2018)."""

    def __init__(self, in_features: int, num_classes: int, s: float = 64.0, m: float = 0.35):
        super().__init__(in_features, num_classes)
        self.s, self.m = s, m

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(features)
        return self.s * (cos - self.m * F.one_hot(labels, cos.shape[1]).to(cos.dtype))


class ASoftmaxHead(_MarginHead):
    """Multiplicative angular margin (SphereFace, Liu et al., CVPR 2017), m = 4.

    Target logit ||x|| psi(theta), psi(theta) = (-1)^k cos(m theta) - 2k on [k pi / m, (k+1) pi / m];
    other logits ||x|| cos(theta). As in SphereFace, training starts close to plain softmax and anneals
    to the margin: the target logit is ||x|| (lambda cos + psi) / (1 + lambda) with
    lambda = max(lambda_min, base * (1 + gamma * iteration)^-power), counted by forward calls in
    training mode (the counter is a buffer, so it is checkpointed).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        m: int = 4,
        base: float = 1000.0,
        gamma: float = 0.12,
        power: float = 1.0,
        lambda_min: float = 5.0,
    ):
        super().__init__(in_features, num_classes)
        if m not in (1, 2, 3, 4):
            raise ValueError(f"A-Softmax margin m must be 1, 2, 3 or 4, got {m}")
        self.m, self.base, self.gamma, self.power, self.lambda_min = m, base, gamma, power, lambda_min
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def current_lambda(self) -> float:
        return max(self.lambda_min, self.base * (1 + self.gamma * int(self.iteration)) ** -self.power)

    def _cos_m_theta(self, c: torch.Tensor) -> torch.Tensor:
        # Chebyshev polynomials: cos(m theta) as a polynomial of cos(theta).
        return [lambda c: c, lambda c: 2 * c**2 - 1, lambda c: 4 * c**3 - 3 * c, lambda c: 8 * c**4 - 8 * c**2 + 1][
            self.m - 1
        ](c)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(features)
        norm = features.norm(dim=1, keepdim=True)
        k = torch.floor(self.m * torch.acos(cos.detach()) / math.pi)
        sign = 1 - 2 * torch.remainder(k, 2)
        psi = sign * self._cos_m_theta(cos) - 2 * k
        lam = self.current_lambda()
        if self.training:
            self.iteration += 1
        one_hot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        target = (lam * cos + psi) / (1 + lam)
        return norm * (one_hot * target + (1 - one_hot) * cos)


HEADS = {"arcface": ArcFaceHead, "cosface": CosFaceHead, "asoftmax": ASoftmaxHead}


def build_margin_head(name: str, in_features: int, num_classes: int, **kwargs) -> _MarginHead:
    if name not in HEADS:
        raise ValueError(f"unknown margin head '{name}': choose one of {', '.join(HEADS)}")
    return HEADS[name](in_features, num_classes, **kwargs)
