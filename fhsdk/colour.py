"""Colour conversion of decoded frames where they are, on the GPU or the CPU.

Hardware video decoders (NVDEC, through PyNvVideoCodec or torchcodec) hand back NV12 frames in device
memory: a full-resolution luma plane followed by a half-resolution plane of interleaved U, V.
`nv12_to_bgr` turns them into the BGR uint8 frames the pipeline takes without a trip to the host,
with OpenCV's arithmetic for `cv2.COLOR_YUV2BGR_NV12` (BT.601, limited range, chroma replicated
over each 2 x 2 block), so a GPU-decoded frame matches a CPU-decoded one.
"""

from __future__ import annotations

import torch

from fhsdk.errors import InvalidInputError

# BT.601 limited range: R = 1.164 (Y - 16) + 1.596 (V - 128), etc. (the coefficients OpenCV uses).
_Y_SCALE, _R_V, _G_U, _G_V, _B_U = 1.164, 1.596, -0.391, -0.813, 2.018


def nv12_to_bgr(nv12: torch.Tensor) -> torch.Tensor:
    """(H * 3 / 2) x W uint8 NV12 (any device) -> H x W x 3 uint8 BGR on the same device."""
    if nv12.dtype != torch.uint8 or nv12.dim() != 2 or nv12.shape[0] % 3 or nv12.shape[1] % 2:  # H = 2/3 rows, even
        raise InvalidInputError(
            f"an NV12 frame is a uint8 (H * 3 / 2) x W array with even H and W, got {tuple(nv12.shape)} {nv12.dtype}"
        )
    height, width = nv12.shape[0] * 2 // 3, nv12.shape[1]
    y = (nv12[:height].float() - 16.0).clamp_(min=0.0) * _Y_SCALE
    uv = nv12[height:].reshape(height // 2, width // 2, 2).float() - 128.0
    uv = uv.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1)  # each chroma sample covers 2 x 2 pixels
    u, v = uv[..., 0], uv[..., 1]
    bgr = torch.stack([y + _B_U * u, y + _G_U * u + _G_V * v, y + _R_V * v], dim=-1)
    return bgr.round_().clamp_(0, 255).to(torch.uint8)
