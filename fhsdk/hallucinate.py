"""Hallucinators: map aligned LR crops of the canonical region (any side) to HR crops of side HR_SIDE.

`BicubicHallucinator` is the baseline. `NetworkHallucinator` wraps a trained generator: any input side
is first resized (bicubic) to the generator's native LR side, then the network upsamples it.
`create_hallucinator` builds either from a name or a weight file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fhsdk.align import HR_SIDE
from fhsdk.degrade import resize_bicubic
from fhsdk.errors import ConfigError, WeightsError
from fhsdk.images import as_crop_batch
from fhsdk.models.hallucinator_file import read_hallucinator
from fhsdk.runtime.module_adapter import runner
from fhsdk.weights import PACKAGED_DIR, check_packaged

# Hallucinators shipped inside the package, by name (docs/MODEL_CARD.md): `lai` is Lai et al.'s
# identity-preserved model on bicubic downsampling (the LFW protocol); `default` is `lai` fine-tuned with
# C-Face's loss, then on inputs made the way Pipeline makes them (area-shrunk frames, the detector's
# landmark error, a bilinear warp) of all CelebA training people; `surveillance` is `lai` fine-tuned on camera-like blur, noise and JPEG.
PACKAGED = {name: PACKAGED_DIR / f"hallucinator_{name}.pt" for name in ("default", "lai", "surveillance")}
PACKAGED_DEFAULT = PACKAGED["default"]


class BicubicHallucinator:
    name = "bicubic"
    native_side = None  # no network: each face is resized from its own side

    def __init__(self, hr_side: int = HR_SIDE):
        self.hr_side = hr_side

    def use_backend(self, kind: str) -> BicubicHallucinator:
        return self  # nothing to run on a backend

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return resize_bicubic(crops, self.hr_side)

    def hallucinate_tensor(self, crops: np.ndarray) -> torch.Tensor:
        """N x 3 x hr x hr float32 RGB (0-255, whole levels): the pipeline's input to the embedder."""
        return bgr_uint8_to_tensor(resize_bicubic(crops, self.hr_side))


class NetworkHallucinator:
    """A trained generator behind the crop-in, crop-out contract (BGR uint8 N x s x s x 3)."""

    def __init__(
        self,
        generator: torch.nn.Module,
        native_side: int,
        name: str = "network",
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        arch: str | None = None,
    ):
        self.generator = generator.to(device).eval()
        self.native_side = native_side
        self.name = name
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.arch = arch
        self._forward = self.generator
        with torch.no_grad():
            probe = torch.zeros(1, 3, native_side, native_side, device=self.device)
            self.hr_side = int(self.generator(probe).shape[-1])

    def use_backend(self, kind: str) -> NetworkHallucinator:
        """Run the generator on another runtime backend ('onnxruntime', 'tensorrt', 'auto', 'torch')."""
        if kind != "torch" and self.arch is None:
            raise ConfigError("this hallucinator does not name its architecture, so it can only run on backend='torch'")
        self._forward = runner(self.generator, self.arch, kind, str(self.device))
        return self

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> NetworkHallucinator:
        record = read_hallucinator(path)
        try:
            generator = record.build()
        except (TypeError, RuntimeError, KeyError) as error:  # arguments or weights of another network
            raise WeightsError(
                f"{path} does not build the network it names ({error}): export it again with "
                "`python -m train.export_weights RUN_DIR`"
            ) from error
        return cls(generator, record.native_side, name=Path(path).stem, device=device, arch=record.arch)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return tensor_to_bgr_uint8(self.hallucinate_tensor(crops))

    @torch.no_grad()
    def hallucinate_tensor(self, crops: np.ndarray) -> torch.Tensor:
        """N x 3 x hr x hr float32 RGB (0-255, whole levels, as the uint8 output) on this device.

        The pipeline hands this straight to the embedder, so on a GPU the restored faces never
        leave the device between the two networks.
        """
        crops = as_crop_batch(crops)
        out = torch.empty((len(crops), 3, self.hr_side, self.hr_side), dtype=torch.float32, device=self.device)
        for start in range(0, len(crops), self.batch_size):
            lr = bgr_uint8_to_tensor(resize_bicubic(crops[start : start + self.batch_size], self.native_side))
            sr = self._forward(lr.to(self.device).div_(255.0))
            out[start : start + len(lr)] = sr.clamp_(0, 1).mul_(255).round_()
        return out


def bgr_uint8_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """BGR uint8 N x H x W x 3 -> float32 RGB N x 3 x H x W (0-255), on the CPU."""
    return torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2))).float()


def tensor_to_bgr_uint8(batch: torch.Tensor) -> np.ndarray:
    """float RGB N x 3 x H x W (0-255) on any device -> BGR uint8 N x H x W x 3 on the host."""
    return batch.round().clamp_(0, 255).to(torch.uint8).flip(1).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def create_hallucinator(spec: str = "bicubic", device: str | torch.device = "cpu", backend: str = "torch"):
    """The hallucinator stage (fhsdk.stages), built by name, device and backend: 'bicubic', a packaged
    model ('default', 'lai', 'surveillance'), or a path to a hallucinator .pt file."""
    return _load_hallucinator(spec, device).use_backend(backend)


def _load_hallucinator(spec: str, device: str | torch.device):
    if not isinstance(spec, (str, Path)):
        raise ConfigError(f"a hallucinator is named by a string or a .pt path, got {type(spec).__name__}")
    spec = str(spec)
    if spec == "bicubic":
        return BicubicHallucinator()
    if spec in PACKAGED:
        packaged = PACKAGED[spec]
        check_packaged(packaged, "hallucinator", spec, "pass hallucinator='bicubic' or the path to a trained .pt file")
        return NetworkHallucinator.from_file(packaged, device=device)
    if spec.endswith(".pt") or Path(spec).exists():
        return NetworkHallucinator.from_file(spec, device=device)
    raise ConfigError(
        f"unknown hallucinator '{spec}': use 'bicubic', {', '.join(repr(n) for n in PACKAGED)} or a path to a .pt file"
    )
