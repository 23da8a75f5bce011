"""Identity losses between the recogniser's features of SR faces and of real faces.

Features go in as N x D tensors, as the recogniser returns them (not normalised); every loss says
whether it L2-normalises them. Which branches carry gradients is the procedure's business: pass HR
features computed under `torch.no_grad()` when the recogniser is not being trained by this loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample squared Euclidean distance of L2-normalised features."""
    return (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(dim=1)


def super_identity_loss(sr_features: torch.Tensor, hr_features: torch.Tensor) -> torch.Tensor:
    """SICNN's L_SI: mean squared Euclidean distance of L2-normalised identity features (in [0, 4])."""
    return _squared_distance(sr_features, hr_features).mean()


def cosine_identity_loss(sr_features: torch.Tensor, hr_features: torch.Tensor) -> torch.Tensor:
    """Lai et al.'s identity loss: mean of 1 - cos(FR(SR), FR(HR)) (in [0, 2])."""
    return (1 - F.cosine_similarity(sr_features, hr_features, dim=1)).mean()


def feature_distance_loss(sr_features: torch.Tensor, hr_features: torch.Tensor) -> torch.Tensor:
    """FH-GAN's identity loss: mean over the batch of ||FR(HR) - FR(SR)||^2 on raw features."""
    return (hr_features - sr_features).pow(2).sum(dim=1).mean()


def cface_loss(
    sr_features: torch.Tensor,
    hr_features: torch.Tensor,
    compare_features: torch.Tensor,
    gamma1: float = 1.0,
    gamma2: float = 1.0,
) -> torch.Tensor:
    """C-Face: gamma1 * L_SI(SR, HR) + gamma2 * max(L_SI(SR, C) - L_SI(HR, C), 0).

    C is a compare face of the same person (another image). The hinge is taken per sample, then
    averaged: SR must be at least as close to C as its own HR is.
    """
    hinge = (
        _squared_distance(sr_features, compare_features) - _squared_distance(hr_features, compare_features)
    ).clamp_min(0)
    return gamma1 * super_identity_loss(sr_features, hr_features) + gamma2 * hinge.mean()


def pair_identity_loss(
    sr_features: torch.Tensor,
    real_features: torch.Tensor,
    sr_labels: torch.Tensor,
    real_labels: torch.Tensor,
    margin: float = 0.3,
) -> torch.Tensor:
    """IP-FSRGAN's ID loss E[I (1 - cos)] + E[(1 - I) max(0, cos - m)] over (SR, real) pairs.

    Every SR face is paired with every real face of the batch; I = 1 for the same identity. Each
    expectation is taken over its own kind of pair (positives, negatives), which is the paper's
    objective under balanced pair sampling and keeps the rare positives from being swamped.
    """
    cos = F.normalize(sr_features, dim=1) @ F.normalize(real_features, dim=1).t()
    same = (sr_labels[:, None] == real_labels[None, :]).to(cos.dtype)
    loss = cos.new_zeros(())
    if same.sum() > 0:
        loss = loss + (same * (1 - cos)).sum() / same.sum()
    different = 1 - same
    if different.sum() > 0:
        loss = loss + (different * (cos - margin).clamp_min(0)).sum() / different.sum()
    return loss


def _fill_missing(indices: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace invalid slots by the row's first valid pick, or by the row's own index if it has none."""
    n = indices.shape[0]
    own = torch.arange(n, device=indices.device)
    first = torch.where(valid[:, 0], indices[:, 0], own)
    return torch.where(valid, indices, first[:, None].expand_as(indices))


def topk_same_identity(embeddings: torch.Tensor, labels: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Per image, the indices of its k most similar (cosine) other images of the same identity.

    Returns N x k int64. An identity with fewer than k + 1 images repeats its best pick; an image that
    is the only one of its identity gets its own index (the C-Face hinge is then zero for it).
    """
    x = F.normalize(embeddings.float(), dim=1)
    similarity = x @ x.t()
    n = len(labels)
    candidate = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool, device=labels.device)
    similarity = similarity.masked_fill(~candidate, float("-inf"))
    values, indices = similarity.topk(min(k, n), dim=1)
    if indices.shape[1] < k:  # fewer images than k in total
        pad = k - indices.shape[1]
        indices = torch.cat([indices, indices[:, :1].expand(-1, pad)], dim=1)
        values = torch.cat([values, values.new_full((n, pad), float("-inf"))], dim=1)
    return _fill_missing(indices, torch.isfinite(values))


def random_same_identity(labels: torch.Tensor, k: int = 3, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ablation of `topk_same_identity`: k random other images of the same identity (same fill rules)."""
    n = len(labels)
    candidate = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool, device=labels.device)
    scores = torch.rand(n, n, generator=generator).masked_fill(~candidate, float("-inf"))
    values, indices = scores.topk(min(k, n), dim=1)
    if indices.shape[1] < k:
        pad = k - indices.shape[1]
        indices = torch.cat([indices, indices[:, :1].expand(-1, pad)], dim=1)
        values = torch.cat([values, values.new_full((n, pad), float("-inf"))], dim=1)
    return _fill_missing(indices, torch.isfinite(values))


def relational_contrastive_loss(
    student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, scale: float = 10.0
) -> torch.Tensor:
    """Keeps identities apart across resolutions: each student feature (of an LR or hallucinated face)
    must be nearer, in cosine, to the teacher's HR features of its own person than to the batch's other
    people (supervised contrastive: -log of the softmax mass, at `scale` / cosine, on its positives)."""
    logits = scale * F.normalize(student, dim=1) @ F.normalize(teacher, dim=1).T
    positives = labels[:, None] == labels[None, :]
    log_probability = logits.log_softmax(dim=1)
    return -(torch.logsumexp(log_probability.masked_fill(~positives, float("-inf")), dim=1)).mean()
