"""Crop boxes out of images and resize them to a fixed side, all boxes of an image in one op."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_resize(images: list[torch.Tensor], image_index: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear crops (N x C x size x size) of `boxes` (N x 4, pixel-edge x1, y1, x2, y2) from `images`.

    `images` holds C x H x W float tensors (sizes may differ); `image_index[i]` says which image box
    i comes from. Samples are taken at the centres of a size x size grid laid over each box (the
    half-pixel convention of cv2.resize); parts of a box outside the image read as zeros, so a face
    cut by the frame border is padded rather than dropped. One grid_sample call per image, not per box.
    """
    n = boxes.shape[0]
    channels = images[0].shape[0] if images else 3
    out = boxes.new_zeros((n, channels, size, size))
    if n == 0:
        return out
    steps = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    for index in image_index.unique().tolist():
        image = images[index]
        height, width = image.shape[-2:]
        selected = (image_index == index).nonzero(as_tuple=True)[0]
        b = boxes[selected]
        xs = b[:, 0:1] + steps[None] * (b[:, 2:3] - b[:, 0:1])  # K x size, pixel-edge coordinates
        ys = b[:, 1:2] + steps[None] * (b[:, 3:4] - b[:, 1:2])
        # grid_sample (align_corners=False) maps -1 and 1 to the image's outer edges.
        gx = (2 * xs / width - 1)[:, None, :].expand(-1, size, -1)
        gy = (2 * ys / height - 1)[:, :, None].expand(-1, -1, size)
        grid = torch.stack([gx, gy], dim=-1).reshape(1, -1, size, 2)  # all boxes stacked vertically
        crops = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out[selected] = crops.reshape(channels, -1, size, size).transpose(0, 1)
    return out
