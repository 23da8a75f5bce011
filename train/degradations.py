"""Training-time degradations: HR crops -> LR inputs at the generator's native side.

Everything works on float RGB batches in [0, 1], N x 3 x H x W, and draws its randomness from a
`torch.Generator` the training procedure owns (and checkpoints), so a resumed run degrades the same
batches the same way. The bicubic model matches `fhsdk.degrade` (antialiased bicubic, as MATLAB's
imresize that face hallucination papers use).

Pipeline per batch: pick a downsampling factor from `factors` (one per batch, as Lai et al.'s random
x4/x8/x16), optionally blur / add noise / JPEG-compress (the "realistic" option), then resize the LR
crop to the generator's native input side. `mode` says how the two resizes are made:
- "bicubic" (the LFW aligned-crop protocol's queries): antialiased bicubic down to side s, bicubic up to
  the native side (`fhsdk.hallucinate` resizes an s-px crop the same way);
- "pipeline" (what `Pipeline` feeds a hallucinator): the face shrunk by area averaging (a whole frame
  shrunk, or a distant camera integrating light), quantised to 8 bits as a frame is, then sampled
  bilinearly at the native side (`Pipeline` warps a tiny face straight from the frame to the
  hallucinator's input side with `fhsdk.align`'s bilinear kernel).
With `jitter` (either mode), each LR input is cut from a slightly misaligned HR face, as the detector's
landmarks on the tiny face misplace the pipeline's crop: a table of LR side -> [shift x, shift y, scale
(means: the detector's bias); shift, scale, rotation (half-widths of uniform draws)], interpolated
linearly between sides and measured by `tools/measure_landmark_jitter.py`. The target stays the
canonical HR face, so the generator learns to restore the face where the gallery has it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fhsdk.errors import ConfigError


def resize(images: torch.Tensor, side: int) -> torch.Tensor:
    """Bicubic resize of N x 3 x H x W to side x side, antialiased when shrinking."""
    if images.shape[-1] == side and images.shape[-2] == side:
        return images
    shrinking = side < images.shape[-1]
    return F.interpolate(images, size=(side, side), mode="bicubic", align_corners=False, antialias=shrinking)


def _quantise(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255).round() / 255


def _upsample_bilinear(images: torch.Tensor, side: int) -> torch.Tensor:
    """Bilinear with half-pixel centres, no antialias: fhsdk.align's warp at an upscaling similarity."""
    if images.shape[-1] == side and images.shape[-2] == side:
        return images
    return F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)


def _uniform(generator: torch.Generator, low: float, high: float, n: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def gaussian_blur(images: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Per-image isotropic Gaussian blur (sigma in pixels; sigma ~ 0 leaves the image unchanged)."""
    radius = int(np.ceil(3 * float(sigmas.max()))) if len(sigmas) else 0
    if radius == 0:
        return images
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernels = torch.exp(-0.5 * (offsets[None] / sigmas.clamp_min(1e-3)[:, None].to(images.dtype)) ** 2)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)  # N x K, separable
    n, c, h, w = images.shape
    x = F.pad(images.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    weight = kernels.repeat_interleave(c, dim=0)
    x = F.conv2d(x, weight.view(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, weight.view(n * c, 1, -1, 1), groups=n * c)
    return x.view(n, c, h, w)


def jpeg(images: torch.Tensor, qualities: list[int]) -> torch.Tensor:
    """JPEG round trip through cv2.imencode / imdecode at a quality per image."""
    out = torch.empty_like(images)
    for i, (image, quality) in enumerate(zip(images, qualities)):
        rgb = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        ok, buffer = cv2.imencode(
            ".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        )
        if not ok:
            raise RuntimeError("cv2.imencode failed to JPEG-encode a training crop")
        decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:, :, ::-1]
        out[i] = torch.from_numpy(np.ascontiguousarray(decoded)).permute(2, 0, 1).to(images.dtype) / 255
    return out


MODES = ("bicubic", "pipeline")


@dataclass
class Degradation:
    """HR batch -> (LR batch at `native_side`, the LR side used before the resize).

    factors: downsampling factors relative to the HR side, one drawn per batch.
    realistic: add blur (sigma in HR pixels, before downsampling), Gaussian noise (std in 0-255 units,
    at LR) and JPEG (at LR), each with parameters drawn per image.
    realistic_fraction: share of a batch's images that get the realistic degradation (the rest stay
    plain bicubic), so one model learns both clean and camera-like inputs.
    mode: "bicubic" or "pipeline" (module docstring); jitter: {LR side: [shift x, shift y, scale means,
    shift, scale, rotation half-widths]} (module docstring), or None.
    """

    native_side: int = 32
    factors: tuple[int, ...] = (4,)
    realistic: bool = False
    blur_sigma: tuple[float, float] = (0.0, 1.5)
    noise_std: tuple[float, float] = (0.0, 8.0)
    jpeg_quality: tuple[int, int] = (40, 95)
    realistic_fraction: float = 1.0
    mode: str = "bicubic"
    jitter: dict | None = None

    def __post_init__(self):
        if not 0.0 <= self.realistic_fraction <= 1.0:
            raise ConfigError(f"degradation.realistic_fraction must lie in [0, 1], got {self.realistic_fraction}")
        if self.mode not in MODES:
            raise ConfigError(f"degradation.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.jitter:
            rows = {float(side): row for side, row in self.jitter.items()}
            if any(not isinstance(row, (list, tuple)) or len(row) != 6 for row in rows.values()):
                raise ConfigError(
                    "degradation.jitter maps an LR side to 6 numbers: shift x, shift y, scale "
                    "(means), shift, scale, rotation (half-widths); see tools/measure_landmark_jitter.py"
                )
            self._jitter_sides = np.array(sorted(rows))
            self._jitter_rows = np.array([rows[side] for side in self._jitter_sides], dtype=np.float64)

    def misalign(self, hr: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
        """HR faces cut as the detector's landmarks on a face of LR side `side` would cut them."""
        if not self.jitter:
            return hr
        row = [float(np.interp(side, self._jitter_sides, column)) for column in self._jitter_rows.T]
        return similarity_jitter(
            hr, generator, shift=row[3], scale=row[4], rotate_deg=row[5], shift_mean=(row[0], row[1]), scale_mean=row[2]
        )

    def __call__(self, hr: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        factor = self.factors[int(torch.randint(len(self.factors), (1,), generator=generator))]
        side = max(1, round(hr.shape[-1] / factor))
        n = hr.shape[0]
        x = self.misalign(hr, side, generator)
        if self.realistic:
            # Drawn only for a mixed batch, so full-realistic runs keep their random stream.
            if self.realistic_fraction < 1:
                degraded = torch.rand(n, generator=generator) < self.realistic_fraction
            else:
                degraded = torch.ones(n, dtype=torch.bool)
            x = gaussian_blur(x, _uniform(generator, *self.blur_sigma, n) * degraded)
        pipeline_way = self.mode == "pipeline"
        lr = (
            F.interpolate(x, size=(side, side), mode="area") if pipeline_way and side < x.shape[-1] else resize(x, side)
        )
        if self.realistic:
            std = _uniform(generator, *self.noise_std, n).view(n, 1, 1, 1) * degraded.view(n, 1, 1, 1) / 255
            lr = lr + std * torch.randn(lr.shape, generator=generator)
            qualities = torch.randint(self.jpeg_quality[0], self.jpeg_quality[1] + 1, (n,), generator=generator)
            if bool(degraded.any()):
                lr[degraded] = jpeg(lr[degraded], qualities[degraded].tolist())
        lr = lr.clamp(0, 1)
        if pipeline_way:
            return _quantise(_upsample_bilinear(_quantise(lr), self.native_side)), side  # the warp writes uint8
        return resize(lr, self.native_side).clamp(0, 1), side


def similarity_jitter(
    hr: torch.Tensor,
    generator: torch.Generator,
    shift: float = 0.0,
    scale: float = 0.0,
    rotate_deg: float = 0.0,
    shift_mean: tuple[float, float] = (0.0, 0.0),
    scale_mean: float = 0.0,
) -> torch.Tensor:
    """Crops as the pipeline aligns a tiny face: by landmarks found on the LR face itself, so off by a
    small random similarity (uniform per image: shift in fractions of the side, scale as a relative change,
    rotation in degrees), around a mean offset (the crop's centre moved by `shift_mean` sides, its side
    grown by `scale_mean`: a detector's bias). Pixels brought in from outside the crop repeat its border.
    Downscale after."""
    n = hr.shape[0]
    angle = torch.deg2rad(_uniform(generator, -rotate_deg, rotate_deg, n))
    zoom = 1 / (1 + scale_mean) + _uniform(generator, -scale, scale, n)
    offset = (
        _uniform(generator, -shift, shift, 2 * n).view(n, 2) + torch.tensor(shift_mean)
    ) * 2  # [-1, 1] spans the side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(hr.dtype), list(hr.shape), align_corners=False)
    return F.grid_sample(hr, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_hflip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each image of N x C x H x W horizontally with probability p; returns (images, flipped mask)."""
    flip = torch.rand(images.shape[0], generator=generator) < p
    if not bool(flip.any()):
        return images, flip
    out = images.clone()
    out[flip] = images[flip].flip(-1)
    return out, flip


def build_degradation(cfg: dict, native_side: int) -> Degradation:
    cfg = dict(cfg or {})
    for key in ("factors", "blur_sigma", "noise_std", "jpeg_quality"):
        if key in cfg:
            cfg[key] = tuple(cfg[key])
    return Degradation(native_side=native_side, **cfg)
