"""FH-GAN (Bayramli et al.): DSNet generator, WGAN-GP critic, identity loss, ArcFace recogniser trained jointly.

Every iteration: `critic_steps` critic updates (Wasserstein loss + 10 * gradient penalty; the critic has
no batch norm), one recogniser + ArcFace (s = 64, m = 0.5) update on {HR, SR}, then one generator update
on pixel MSE + w_adv * (-critic(SR)) + w_id * ||FR(HR) - FR(SR)||^2 through the current recogniser.
"""

from __future__ import annotations

import torch

from train.losses import feature_distance_loss, pixel_loss
from train.procedures.base import Procedure, frozen


class FHGANProcedure(Procedure):
    name = "fhgan"
    config_sections = {
        "loss": {
            "pixel": "l2",
            "adversarial_weight": 1e-3,
            "identity_weight": 1.0,
            "critic_steps": 1,
            "gp_weight": 10.0,
        }
    }
    loss_names = (
        "total",
        "pixel",
        "adversarial",
        "identity",
        "critic",
        "gradient_penalty",
        "recognizer",
        "recognizer_acc",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recognizer = self.build_recognizer(trainable=True)
        self.head = self.build_head(self.recognizer)
        self.critic = self.build_discriminator()
        optim = self.cfg["optim"]
        self.add_optimizer("generator", self.generator.parameters(), optim["generator"])
        self.add_optimizer("discriminator", self.critic.parameters(), optim["discriminator"])
        self.add_optimizer("recognizer", [*self.recognizer.parameters(), *self.head.parameters()], optim["recognizer"])

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        loss_cfg = self.cfg["loss"]
        batch = self.prepare(batch)
        hr, labels = batch.hr, batch.labels
        sr = self.generator(batch.lr)

        for _ in range(loss_cfg["critic_steps"]):
            critic, penalty = self.discriminator_step("wgan", hr, sr, gp_weight=loss_cfg["gp_weight"])

        recognizer_loss, accuracy = self.margin_step(hr, sr.detach(), labels)

        with torch.no_grad():
            hr_features = self.recognizer(hr)
        with frozen(self.recognizer):
            identity = feature_distance_loss(self.recognizer(sr), hr_features)
        pixel = pixel_loss(sr, hr, loss_cfg["pixel"])
        adversarial = self.adversarial_term("wgan", hr, sr)
        total = pixel + loss_cfg["adversarial_weight"] * adversarial + loss_cfg["identity_weight"] * identity
        self.step(self.optimizers["generator"], total)
        return {
            "total": total.item(),
            "pixel": pixel.item(),
            "adversarial": adversarial.item(),
            "identity": identity.item(),
            "critic": critic.item(),
            "gradient_penalty": penalty.item(),
            "recognizer": recognizer_loss.item(),
            "recognizer_acc": accuracy.item(),
        }
