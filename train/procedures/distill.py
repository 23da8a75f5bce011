"""A recogniser adapted to tiny and hallucinated faces by cross-resolution distillation.

SICNN's domain-integrated training and C-Face's recogniser stage fine-tune the recogniser on SR faces,
which moves its embedding space: every enrolled gallery would have to be re-embedded. Here a copy of
the recogniser (the student) learns to map a low-resolution view of a face to the frozen original's
(the teacher's) embedding of the HR face, so galleries embedded by the original stay valid and only
the faces the pipeline hallucinates go through the student.

Per batch: faces are mirrored at random, optionally jittered by a small similarity (`distill.jitter`;
the shipped config instead uses `degradation.jitter`, the measured error of the detector's landmarks
on tiny faces, with `degradation.mode: pipeline`), degraded to an LR side drawn from
`degradation.factors` (optionally with camera blur/noise/JPEG), and each face becomes one of three
inputs (`distill.mix`): the packaged hallucinator's output (`train.init_generator`, frozen), the LR
crop upscaled bicubically, or the HR face itself (so HR faces keep their embeddings). Loss:
mean (1 - cos(student(input), teacher(HR))) + `contrastive_weight` x a supervised contrastive term
over the batch (`relational_contrastive_loss`: each input nearer to its own person's HR teacher
features than to the other people's). With `distill.center`, the mean of the batch's (unit) teacher
features is removed from both before a second 1 - cos term and before the contrastive term: dlib's
embeddings share one large component, which makes a plain 1 - cos small while identities still differ. The student is exported as `recognizer_finetuned.pt`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fhsdk.errors import ConfigError
from train.degradations import random_hflip, resize, similarity_jitter
from train.losses import relational_contrastive_loss
from train.procedures.base import Procedure, set_trainable
from train.recognizer import build_recognizer
from train.schema import OPEN

INPUTS = ("hallucinated", "bicubic", "hr")


class RecognizerDistillProcedure(Procedure):
    name = "distill"
    config_sections = {
        "distill": {
            "mix": {kind: 0.0 for kind in INPUTS},
            "jitter": OPEN,
            "contrastive_scale": 10.0,
            "contrastive_weight": 0.1,
            "center": False,
        }
    }
    loss_names = ("total", "distill", "contrastive", "distill_lr", "distill_hr")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg["distill"]
        self.mix = torch.tensor([float(cfg["mix"][kind]) for kind in INPUTS])
        if (self.mix < 0).any() or self.mix.sum() <= 0:
            raise ConfigError(f"distill.mix needs non-negative shares of {', '.join(INPUTS)}, got {cfg['mix']}")
        set_trainable(self.generator, False)  # the hallucinator is fixed: its outputs are inputs here
        self.teacher = build_recognizer(self.cfg["recognizer"]).to(self.device)
        set_trainable(self.teacher, False)
        self.networks["teacher"] = self.teacher
        self.recognizer = self.build_recognizer(trainable=True)  # the student, exported for deployment
        self.recognizer.load_state_dict(self.teacher.state_dict())  # a copy of the teacher
        self.add_optimizer("recognizer", self.recognizer.parameters(), self.cfg["optim"]["recognizer"])

    def make_inputs(self, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mirrored HR targets, student inputs at the HR side, which of INPUTS each input is)."""
        cfg = self.cfg["distill"]
        if self.hflip:
            hr, _ = random_hflip(hr, self.rng)
        jittered = similarity_jitter(hr, self.rng, **cfg["jitter"]) if cfg["jitter"] else hr
        lr, _ = self.degradation(jittered, self.rng)  # at the generator's native side
        kind = torch.multinomial(self.mix, len(hr), replacement=True, generator=self.rng)
        inputs = hr.clone()
        lr_rows = kind == INPUTS.index("bicubic")
        inputs[lr_rows] = resize(lr[lr_rows], hr.shape[-1]).clamp(0, 1)
        sr_rows = kind == INPUTS.index("hallucinated")
        if bool(sr_rows.any()):
            with torch.no_grad():
                inputs[sr_rows] = self.generator(lr[sr_rows].to(self.device)).clamp(0, 1).cpu()
        return hr, inputs, kind

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        cfg = self.cfg["distill"]
        hr, inputs, kind = self.make_inputs(batch["hr"])
        hr, inputs, labels = hr.to(self.device), inputs.to(self.device), batch["label"].to(self.device)
        with torch.no_grad():
            target = F.normalize(self.teacher(hr), dim=1)
        student = F.normalize(self.recognizer(inputs), dim=1)
        gap = 1 - (student * target).sum(dim=1)
        distill = gap.mean()
        if cfg["center"]:
            # Every face's embedding shares one large component (strangers' cosines reach 0.92 at a 1% false
            # accept rate: pipeline.DEFAULT_THRESHOLD), so 1 - cos barely sees the identity-carrying rest; the
            # same losses on features with the batch's mean teacher feature removed do. Matching is unchanged
            # by that shared component.
            mean = target.mean(dim=0, keepdim=True)
            student, target = student - mean, target - mean
            distill = distill + (1 - F.cosine_similarity(student, target, dim=1)).mean()
        contrastive = relational_contrastive_loss(student, target, labels, cfg["contrastive_scale"])
        total = distill + cfg["contrastive_weight"] * contrastive
        self.step(self.optimizers["recognizer"], total)
        losses = {"total": total.item(), "distill": distill.item(), "contrastive": contrastive.item()}
        is_hr = (kind == INPUTS.index("hr")).to(self.device)
        for key, rows in (("distill_lr", ~is_hr), ("distill_hr", is_hr)):
            if bool(rows.any()):  # a batch without that kind of input leaves the log cell empty
                losses[key] = gap[rows].mean().item()
        return losses
