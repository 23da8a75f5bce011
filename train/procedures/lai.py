"""Identity-preserved face hallucination with a frozen recogniser (Lai, He and Lam, ICIP 2019).

EDSR generator; loss L1(SR, HR) + lambda * (1 - cos(FR(SR), FR(HR))), lambda = 0.5; the recogniser is
pretrained and frozen; the LR factor is drawn per batch from x4/x8/x16 (set in `degradation.factors`).
"""

from __future__ import annotations

import torch

from train.losses import cosine_identity_loss, pixel_loss
from train.procedures.base import Procedure


class FrozenRecognizerProcedure(Procedure):
    name = "lai"
    config_sections = {"loss": {"pixel": "l1", "identity_weight": 0.5}}
    loss_names = ("total", "pixel", "identity")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recognizer = self.build_recognizer(trainable=False)
        self.add_optimizer("generator", self.generator.parameters(), self.cfg["optim"]["generator"])

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        loss_cfg = self.cfg["loss"]
        batch = self.prepare(batch)
        lr, hr = batch.lr, batch.hr
        sr = self.generator(lr)
        with torch.no_grad():
            hr_features = self.recognizer(hr)
        pixel = pixel_loss(sr, hr, loss_cfg["pixel"])
        identity = cosine_identity_loss(self.recognizer(sr), hr_features)
        total = pixel + loss_cfg["identity_weight"] * identity
        self.step(self.optimizers["generator"], total)
        return {"total": total.item(), "pixel": pixel.item(), "identity": identity.item()}
