"""Count a network's multiply-accumulates over its conv and linear layers with forward hooks.

Only Conv1d/2d/3d, ConvTranspose and Linear are counted (2 FLOPs per multiply-accumulate, bias
and activations ignored): they are nearly all the arithmetic of fhsdk's conv nets, and they are
what a FLOP floor (FLOPs / peak FLOP/s) is meant to bound.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_DECONV = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _layer_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, _CONV):
        kernel = int(torch.tensor(module.kernel_size).prod())
        return output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, _DECONV):
        # each input element scatters into out_channels/groups x kernel outputs
        kernel = int(torch.tensor(module.kernel_size).prod())
        return inputs[0].numel() * (module.out_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


@torch.no_grad()
def count_flops(model: nn.Module, *inputs: Any) -> dict[str, int]:
    """{'flops': total, 'per_layer': {name: flops}} for one forward pass on `inputs`."""
    per_layer: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, _CONV + _DECONV + (nn.Linear,)):

            def hook(mod, args, out, name=name):
                per_layer[name] = per_layer.get(name, 0) + 2 * _layer_macs(mod, args, out)

            handles.append(module.register_forward_hook(hook))
    try:
        was_training = model.training
        model.eval()
        model(*inputs)
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return {"flops": sum(per_layer.values()), "per_layer": per_layer}
