"""Adversarial losses on raw discriminator scores: standard GAN (BCE), WGAN-GP, relativistic average.

kind = "standard": non-saturating GAN with BCE-with-logits (SRGAN, C-Face).
kind = "wgan":     Wasserstein critic; add `gradient_penalty` * 10 for WGAN-GP (FH-GAN).
kind = "ragan":    relativistic average GAN (ESRGAN, IP-FSRGAN): D judges whether a real face is
                   more realistic than the average fake, and vice versa.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("standard", "wgan", "ragan")


def _bce(scores: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(scores, torch.full_like(scores, target))


def discriminator_loss(kind: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Loss the discriminator minimises (fake_scores from detached SR faces)."""
    if kind == "standard":
        return _bce(real_scores, 1.0) + _bce(fake_scores, 0.0)
    if kind == "wgan":
        return fake_scores.mean() - real_scores.mean()
    if kind == "ragan":
        return 0.5 * (_bce(real_scores - fake_scores.mean(), 1.0) + _bce(fake_scores - real_scores.mean(), 0.0))
    raise ValueError(f"unknown adversarial loss '{kind}': choose one of {', '.join(KINDS)}")


def generator_adversarial_loss(
    kind: str, fake_scores: torch.Tensor, real_scores: torch.Tensor | None = None
) -> torch.Tensor:
    """Loss the generator minimises; RaGAN also needs the real scores (treated as constants)."""
    if kind == "standard":
        return _bce(fake_scores, 1.0)
    if kind == "wgan":
        return -fake_scores.mean()
    if kind == "ragan":
        if real_scores is None:
            raise ValueError("the relativistic generator loss needs the discriminator's scores of real faces")
        real_scores = real_scores.detach()
        return 0.5 * (_bce(real_scores - fake_scores.mean(), 0.0) + _bce(fake_scores - real_scores.mean(), 1.0))
    raise ValueError(f"unknown adversarial loss '{kind}': choose one of {', '.join(KINDS)}")


def gradient_penalty(
    critic: torch.nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's E[(||grad_x D(x)||_2 - 1)^2] at random points between real and fake samples.

    Multiply by lambda (10 in Gulrajani et al. and FH-GAN) in the procedure.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grads.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
