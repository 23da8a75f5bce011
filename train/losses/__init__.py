"""Losses of the five face hallucination methods: pixel, identity, perceptual, adversarial, margin heads."""

from train.losses.adversarial import discriminator_loss, generator_adversarial_loss, gradient_penalty
from train.losses.identity import (
    cface_loss,
    cosine_identity_loss,
    feature_distance_loss,
    pair_identity_loss,
    random_same_identity,
    relational_contrastive_loss,
    super_identity_loss,
    topk_same_identity,
)
from train.losses.margin import ArcFaceHead, ASoftmaxHead, CosFaceHead, build_margin_head
from train.losses.perceptual import perceptual_loss
from train.losses.pixel import pixel_loss

__all__ = [
    "ASoftmaxHead",
    "ArcFaceHead",
    "CosFaceHead",
    "build_margin_head",
    "cface_loss",
    "cosine_identity_loss",
    "discriminator_loss",
    "feature_distance_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
    "pair_identity_loss",
    "perceptual_loss",
    "pixel_loss",
    "random_same_identity",
    "relational_contrastive_loss",
    "super_identity_loss",
    "topk_same_identity",
]
