"""What every training procedure shares: the generator, degradation, optimisers, RNG and state.

A procedure is BasicSR's "model": it owns the networks and optimisers of one method and turns a
batch of HR faces into one training iteration (`train_step`). Everything it needs to continue
bit-for-bit after a restart is in `state_dict()`: network and optimiser states, schedulers, and the
`torch.Generator` that draws degradations, flips, compare faces and gradient-penalty points.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fhsdk.errors import ConfigError
from fhsdk.models import create_model
from train.data import FaceCropDataset
from train.degradations import build_degradation, random_hflip
from train.losses import build_margin_head, discriminator_loss, generator_adversarial_loss, gradient_penalty
from train.recognizer import Recognizer, build_recognizer


def build_generator(cfg: dict, hr_side: int) -> tuple[nn.Module, int]:
    """(generator, native LR side) from a config's `generator:` section; checks lr_side * scale == hr_side."""
    kwargs = dict(cfg)
    name, lr_side = kwargs.pop("name"), kwargs.pop("lr_side")
    if lr_side * kwargs.get("scale", 4) != hr_side:
        raise ConfigError(
            f"generator.lr_side ({lr_side}) x generator.scale ({kwargs.get('scale', 4)}) must equal the HR side "
            f"({hr_side}): the generator maps the native LR side onto the HR crop"
        )
    return create_model(name, **kwargs), lr_side


def build_optimizer(params, cfg: dict) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"])


def set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)
    module.train(trainable)


@dataclass
class Batch:
    lr: torch.Tensor  # N x 3 x native x native, the generator's input
    hr: torch.Tensor  # N x 3 x S x S target
    labels: torch.Tensor  # identity classes 0..C-1
    indices: torch.Tensor  # positions in the training set (CPU)
    flipped: torch.Tensor  # which faces were mirrored (CPU bool)
    lr_side: int  # side of the LR face before the resize to the native side


@contextmanager
def frozen(module: nn.Module):
    """Let gradients flow through `module` to its inputs without computing its parameters' gradients."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class Procedure:
    """Base class. Subclasses add networks in `__init__` and implement `train_step`."""

    name = "base"
    loss_names: tuple[str, ...] = ()
    # Config sections this procedure owns, {section: {key: default}} (train/schema.py checks them).
    config_sections: dict[str, dict] = {"loss": {}}

    def __init__(self, cfg: dict, train_set: FaceCropDataset, device: torch.device, seed: int, out_dir: Path):
        self.cfg = cfg
        self.train_set = train_set
        self.device = torch.device(device)
        self.out_dir = Path(out_dir)
        self.rng = torch.Generator().manual_seed(seed)
        self.hflip = cfg["data"]["hflip"]
        hr_side = train_set.images.shape[1]
        self.generator, self.lr_side = build_generator(cfg["generator"], hr_side)
        self.generator.to(self.device)
        self.degradation = build_degradation(cfg.get("degradation"), self.lr_side)
        self.networks: dict[str, nn.Module] = {"generator": self.generator}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}

    # -- building blocks ---------------------------------------------------------------------------
    def add_optimizer(self, name: str, params, cfg: dict) -> torch.optim.Optimizer:
        optimizer = build_optimizer(params, cfg)
        self.optimizers[name] = optimizer
        self.schedulers[name] = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(cfg["milestones"]), gamma=cfg["gamma"]
        )
        return optimizer

    def build_recognizer(self, trainable: bool) -> Recognizer:
        recognizer = build_recognizer(self.cfg["recognizer"]).to(self.device)
        set_trainable(recognizer, trainable)
        self.networks["recognizer"] = recognizer
        return recognizer

    def build_head(self, recognizer: Recognizer) -> nn.Module:
        cfg = dict(self.cfg["head"])
        was_training = recognizer.training
        with torch.no_grad():  # probe the feature size in eval mode: batch-norm statistics stay untouched
            dim = recognizer.eval()(torch.zeros(1, 3, 8, 8, device=self.device)).shape[1]
        recognizer.train(was_training)
        head = build_margin_head(cfg.pop("name"), dim, self.train_set.num_classes, **cfg).to(self.device)
        self.networks["head"] = head
        return head

    def build_discriminator(self) -> nn.Module:
        cfg = dict(self.cfg["discriminator"])
        discriminator = create_model(cfg.pop("name", "vgg_discriminator"), **cfg).to(self.device)
        self.networks["discriminator"] = discriminator
        return discriminator

    def prepare(self, batch: dict) -> Batch:
        """Flip, degrade (randomness from self.rng, on the CPU), then move to the device."""
        hr = batch["hr"]
        flipped = torch.zeros(len(hr), dtype=torch.bool)
        if self.hflip:
            hr, flipped = random_hflip(hr, self.rng)
        lr, lr_side = self.degradation(hr, self.rng)
        return Batch(
            lr=lr.to(self.device),
            hr=hr.to(self.device),
            labels=batch["label"].to(self.device),
            indices=batch["index"],
            flipped=flipped,
            lr_side=lr_side,
        )

    def discriminator_step(self, kind: str, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 0.0):
        """One discriminator update on real HR and detached SR faces; returns (loss, gradient penalty)."""
        discriminator = self.networks["discriminator"]
        fake = fake.detach()
        loss = discriminator_loss(kind, discriminator(real), discriminator(fake))
        penalty = torch.zeros((), device=self.device)
        if gp_weight:
            penalty = gradient_penalty(discriminator, real, fake, generator=self.rng)
            loss = loss + gp_weight * penalty
        self.step(self.optimizers["discriminator"], loss)
        return loss, penalty

    def adversarial_term(self, kind: str, real: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss on SR faces (the discriminator's weights get no gradients)."""
        discriminator = self.networks["discriminator"]
        with frozen(discriminator):
            real_scores = discriminator(real).detach() if kind == "ragan" else None
            return generator_adversarial_loss(kind, discriminator(sr), real_scores)

    def margin_step(self, first: torch.Tensor, second: torch.Tensor, labels: torch.Tensor):
        """One recogniser update with the margin head on two domains of the same faces (SR and HR).

        Returns (loss, accuracy of the head's cosine logits) for logging.
        """
        faces, both = torch.cat([first, second]), torch.cat([labels, labels])
        features = self.recognizer(faces)
        loss = torch.nn.functional.cross_entropy(self.head(features, both), both)
        self.step(self.optimizers["recognizer"], loss)
        accuracy = (self.head.cosine(features.detach()).argmax(1) == both).float().mean()
        return loss, accuracy

    @staticmethod
    def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # -- the training contract --------------------------------------------------------------------
    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        raise NotImplementedError

    def end_step(self) -> None:
        # Schedules count global steps, also while a staged procedure leaves an optimiser idle.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
            for scheduler in self.schedulers.values():
                scheduler.step()

    def state_dict(self) -> dict:
        return {
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sch.state_dict() for name, sch in self.schedulers.items()},
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sch in self.schedulers.items():
            sch.load_state_dict(state["schedulers"][name])
        self.rng.set_state(state["rng"])
