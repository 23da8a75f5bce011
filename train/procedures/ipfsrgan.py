"""IP-FSRGAN (Li et al.): RRDB generator, relativistic average discriminator, identity loss over pairs.

Generator loss: w_pix * L1 + w_perc * perceptual + w_adv * RaGAN + w_id * ID, where
ID = E[I (1 - cos)] + E[(1 - I) max(0, cos - m)] over every (SR_i, HR_j) pair of the batch (I = same
identity), features from the pretrained, frozen recogniser; the perceptual loss compares the
recogniser's intermediate feature maps (no ImageNet VGG here). As ESRGAN, the first
`pixel_only_steps` steps train the generator on L1 alone (a PSNR-oriented warm start).
"""

from __future__ import annotations

import torch

from train.losses import pair_identity_loss, perceptual_loss, pixel_loss
from train.procedures.base import Procedure, frozen


class IPFSRGANProcedure(Procedure):
    name = "ipfsrgan"
    config_sections = {
        "loss": {
            "pixel": "l1",
            "pixel_only_steps": 0,
            "perceptual_layer_weights": None,
            "id_margin": 0.3,
            "pixel_weight": 1e-2,
            "perceptual_weight": 1.0,
            "adversarial_weight": 5e-3,
            "identity_weight": 1.0,
        }
    }
    loss_names = ("total", "pixel", "perceptual", "adversarial", "identity", "discriminator")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recognizer = self.build_recognizer(trainable=False)
        self.discriminator = self.build_discriminator()
        optim = self.cfg["optim"]
        self.add_optimizer("generator", self.generator.parameters(), optim["generator"])
        self.add_optimizer("discriminator", self.discriminator.parameters(), optim["discriminator"])

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        loss_cfg = self.cfg["loss"]
        batch = self.prepare(batch)
        hr, labels = batch.hr, batch.labels
        sr = self.generator(batch.lr)
        pixel = pixel_loss(sr, hr, loss_cfg["pixel"])
        if step < loss_cfg["pixel_only_steps"]:
            self.step(self.optimizers["generator"], pixel)
            return {"total": pixel.item(), "pixel": pixel.item()}

        d_loss, _ = self.discriminator_step("ragan", hr, sr)
        with torch.no_grad():
            hr_features, hr_maps = self.recognizer.forward_with_features(hr)
        with frozen(self.recognizer):
            sr_features, sr_maps = self.recognizer.forward_with_features(sr)
        perceptual = perceptual_loss(sr_maps, hr_maps, loss_cfg["perceptual_layer_weights"])
        identity = pair_identity_loss(sr_features, hr_features, labels, labels, loss_cfg["id_margin"])
        adversarial = self.adversarial_term("ragan", hr, sr)
        total = (
            loss_cfg["pixel_weight"] * pixel
            + loss_cfg["perceptual_weight"] * perceptual
            + loss_cfg["adversarial_weight"] * adversarial
            + loss_cfg["identity_weight"] * identity
        )
        self.step(self.optimizers["generator"], total)
        return {
            "total": total.item(),
            "pixel": pixel.item(),
            "perceptual": perceptual.item(),
            "adversarial": adversarial.item(),
            "identity": identity.item(),
            "discriminator": d_loss.item(),
        }
