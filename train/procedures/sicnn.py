"""SICNN's domain-integrated training (Zhang et al., ECCV 2018).

Every iteration: (1) the recogniser and its A-Softmax head take one step on {SR, HR} with the
identity labels (SR from the current generator, detached), so it learns one identity space for both
domains; (2) the generator takes one step on L_SR + alpha * L_SI, alpha = 8, with L_SR the pixel
Euclidean loss and L_SI the super-identity loss through the just-updated recogniser (held fixed).

`loss.domain_integrated: false` is the paper's ablation: step (1) is skipped and L_SI goes through the
pretrained recogniser, frozen throughout.
"""

from __future__ import annotations

import torch

from train.losses import pixel_loss, super_identity_loss
from train.procedures.base import Procedure, frozen


class SICNNProcedure(Procedure):
    name = "sicnn"
    # identity_weight: the super-identity loss weight, the paper's alpha (every method names its identity term so)
    config_sections = {"loss": {"pixel": "l2", "identity_weight": 8.0, "domain_integrated": True}}
    loss_names = ("total", "pixel", "super_identity", "recognizer", "recognizer_acc")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.domain_integrated = bool(self.cfg["loss"]["domain_integrated"])
        self.recognizer = self.build_recognizer(trainable=self.domain_integrated)
        optim = self.cfg["optim"]
        self.add_optimizer("generator", self.generator.parameters(), optim["generator"])
        if self.domain_integrated:
            self.head = self.build_head(self.recognizer)
            self.add_optimizer(
                "recognizer", [*self.recognizer.parameters(), *self.head.parameters()], optim["recognizer"]
            )

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        loss_cfg = self.cfg["loss"]
        batch = self.prepare(batch)
        hr, labels = batch.hr, batch.labels
        sr = self.generator(batch.lr)

        # (1) recogniser update on both domains (the frozen ablation has none to log).
        recognizer_loss = accuracy = torch.tensor(float("nan"))
        if self.domain_integrated:
            recognizer_loss, accuracy = self.margin_step(sr.detach(), hr, labels)

        # (2) generator update through the updated, fixed recogniser.
        with torch.no_grad():
            hr_features = self.recognizer(hr)
        pixel = pixel_loss(sr, hr, loss_cfg["pixel"])
        with frozen(self.recognizer):
            super_identity = super_identity_loss(self.recognizer(sr), hr_features)
        total = pixel + loss_cfg["identity_weight"] * super_identity
        self.step(self.optimizers["generator"], total)
        return {
            "total": total.item(),
            "pixel": pixel.item(),
            "super_identity": super_identity.item(),
            "recognizer": recognizer_loss.item(),
            "recognizer_acc": accuracy.item(),
        }
