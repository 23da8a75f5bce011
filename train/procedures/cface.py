"""C-Face (Han et al.): SRGAN with a compare-face identity loss, trained in four stages.

Stage 1 "gan":        SRGAN generator + discriminator (standard GAN); generator loss
                      pixel + w_adv * adversarial + C-Face loss through the pretrained, frozen recogniser.
Stage 2 "super-resolve": at the first step after stage 1, the whole training set is super-resolved
                      once (fixed per-image degradations) and kept as uint8 (also written to the run
                      folder, so a resumed run reloads it).
Stage 3 "recognizer": the recogniser and a margin head are fine-tuned on HR u SR (each batch: the HR
                      faces and their stage-2 SR versions), generator frozen.
Stage 4 "joint":      generator/discriminator as in stage 1 but through the fine-tuned recogniser, and
                      recogniser updates on {HR, SR} with the margin head, alternating every step.

C-Face loss: gamma1 * L_SI(SR, HR) + gamma2 * max(L_SI(SR, C) - L_SI(HR, C), 0), C drawn per face among
its k = 3 most similar same-identity images (cosine of the initial recogniser's features, computed
once over the training set; `compare: random` is the random-compare-face ablation).
"""

from __future__ import annotations

import numpy as np
import torch

from train.degradations import Degradation
from train.losses import cface_loss, pixel_loss, random_same_identity, topk_same_identity
from train.procedures.base import Procedure, frozen, set_trainable
from train.schema import REQUIRED

STAGES = ("gan", "recognizer", "joint")
STAGE_NUMBERS = (1, 3, 4)  # the paper's numbering; stage 2 (super-resolve the set) takes no steps


class CFaceProcedure(Procedure):
    name = "cface"
    config_sections = {
        "loss": {
            "pixel": "l2",
            "adversarial_weight": 1e-3,
            "identity_weight": 1.0,
            "gamma1": 1.0,
            "gamma2": 1.0,
            "compare": "topk",
            "compare_k": 3,
        },
        "stages": {"gan": REQUIRED, "recognizer": REQUIRED, "joint": REQUIRED},
    }
    loss_names = ("stage", "total", "pixel", "adversarial", "cface", "discriminator", "recognizer", "recognizer_acc")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recognizer = self.build_recognizer(trainable=False)
        self.head = self.build_head(self.recognizer)
        self.discriminator = self.build_discriminator()
        optim = self.cfg["optim"]
        self.add_optimizer("generator", self.generator.parameters(), optim["generator"])
        self.add_optimizer("discriminator", self.discriminator.parameters(), optim["discriminator"])
        self.add_optimizer("recognizer", [*self.recognizer.parameters(), *self.head.parameters()], optim["recognizer"])
        self.compare = self._compare_faces()
        self.sr_set: torch.Tensor | None = None

    # -- stages -----------------------------------------------------------------------------------
    def stage_of(self, step: int) -> int:
        """0, 1 or 2 (gan, recognizer, joint) from the step and the configured stage lengths."""
        stages = self.cfg["stages"]
        boundary = 0
        for i, name in enumerate(STAGES):
            boundary += stages[name]
            if step < boundary:
                return i
        return len(STAGES) - 1

    @torch.no_grad()
    def _embed_set(self, indices: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
        indices = torch.arange(len(self.train_set)) if indices is None else indices
        out = [self.recognizer(self.train_set.hr(chunk).to(self.device)).cpu() for chunk in indices.split(batch_size)]
        return torch.cat(out)

    def _compare_faces(self) -> torch.Tensor:
        """N x k dataset indices of each face's candidate compare faces (fixed for the run)."""
        k = self.cfg["loss"]["compare_k"]
        labels = self.train_set.labels
        if self.cfg["loss"]["compare"] == "random":
            seeded = torch.Generator().manual_seed(int(self.cfg["seed"]) + 17)
            return random_same_identity(labels, k, seeded)
        self.recognizer.eval()
        return topk_same_identity(self._embed_set(), labels, k)

    @torch.no_grad()
    def super_resolve_set(self, batch_size: int = 64) -> torch.Tensor:
        """Stage 2: SR of every training face, each degraded with the first configured factor, no noise draws
        shared with training (its own seeded generator)."""
        path = self.out_dir / "sr_set.npz"
        if path.is_file():
            return torch.from_numpy(np.load(path)["images"])
        self.generator.eval()
        plain = Degradation(self.lr_side, factors=self.degradation.factors[:1])
        seeded = torch.Generator().manual_seed(int(self.cfg["seed"]) + 29)
        chunks = []
        for indices in torch.arange(len(self.train_set)).split(batch_size):
            lr, _ = plain(self.train_set.hr(indices), seeded)
            sr = self.generator(lr.to(self.device)).clamp(0, 1)
            chunks.append((sr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu())
        self.generator.train()
        images = torch.cat(chunks)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        np.savez(path, images=images.numpy())
        return images

    # -- steps ------------------------------------------------------------------------------------
    def _compare_batch(self, indices: torch.Tensor) -> torch.Tensor:
        candidates = self.compare[indices]
        pick = torch.randint(candidates.shape[1], (len(indices),), generator=self.rng)
        return self.train_set.hr(candidates[torch.arange(len(indices)), pick]).to(self.device)

    def _generator_gan_step(self, lr, hr, indices) -> tuple[dict[str, float], torch.Tensor]:
        loss_cfg = self.cfg["loss"]
        compare = self._compare_batch(indices)
        sr = self.generator(lr)
        d_loss, _ = self.discriminator_step("standard", hr, sr)
        with torch.no_grad():
            hr_features, compare_features = self.recognizer(torch.cat([hr, compare])).chunk(2)
        with frozen(self.recognizer):
            identity = cface_loss(
                self.recognizer(sr), hr_features, compare_features, loss_cfg["gamma1"], loss_cfg["gamma2"]
            )
        pixel = pixel_loss(sr, hr, loss_cfg["pixel"])
        adversarial = self.adversarial_term("standard", hr, sr)
        total = pixel + loss_cfg["adversarial_weight"] * adversarial + loss_cfg["identity_weight"] * identity
        self.step(self.optimizers["generator"], total)
        logs = {
            "total": total.item(),
            "pixel": pixel.item(),
            "adversarial": adversarial.item(),
            "cface": identity.item(),
            "discriminator": d_loss.item(),
        }
        return logs, sr

    def _recognizer_step(self, hr, sr, labels) -> dict[str, float]:
        loss, accuracy = self.margin_step(hr, sr.detach(), labels)
        return {"recognizer": loss.item(), "recognizer_acc": accuracy.item()}

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        stage = self.stage_of(step)
        batch = self.prepare(batch)
        lr, hr, labels, indices = batch.lr, batch.hr, batch.labels, batch.indices
        if stage == 0:
            set_trainable(self.recognizer, False)
            logs, _ = self._generator_gan_step(lr, hr, indices)
        elif stage == 1:
            if self.sr_set is None:
                self.sr_set = self.super_resolve_set()
            set_trainable(self.recognizer, True)
            # The SR partner of each HR face; flip it the same way prepare() flipped the HR face.
            sr = self.sr_set[indices].permute(0, 3, 1, 2).float().div(255).to(self.device)
            flipped = batch.flipped.to(self.device)
            sr[flipped] = sr[flipped].flip(-1)
            logs = self._recognizer_step(hr, sr, labels)
        else:
            set_trainable(self.recognizer, False)
            logs, sr = self._generator_gan_step(lr, hr, indices)
            set_trainable(self.recognizer, True)
            logs.update(self._recognizer_step(hr, sr, labels))
        return {"stage": float(STAGE_NUMBERS[stage]), **logs}
