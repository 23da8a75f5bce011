"""A preset's network with a weights file loaded, for export and verification of trained models."""

from __future__ import annotations

import os
from typing import Mapping

import torch

from fhsdk.errors import WeightsError
from fhsdk.models.registry import create_model
from fhsdk.runtime.presets import get_preset


def build_preset_model(name: str, weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """A preset's network with a weights file loaded: a plain state_dict (torch.save; raw or under
    'state_dict'), or a checkpoint that also names its architecture ('arch', 'arch_kwargs', as
    `python -m train.export_weights` and the packaged models write), built with those arguments."""
    if not weights:
        return get_preset(name).build().eval()
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise WeightsError(f"cannot read weights '{weights}': {error}") from error
    try:
        if isinstance(state, Mapping) and "arch" in state:
            if state["arch"] != name:
                raise WeightsError(f"'{weights}' holds a '{state['arch']}' model, not '{name}': "
                                   f"export it as `fhsdk export {state['arch']} --weights {weights}`")
            model = create_model(name, **state.get("arch_kwargs", {}))
        else:
            model = get_preset(name).build()
        model.load_state_dict(state.get("state_dict", state))
    except (RuntimeError, KeyError, AttributeError, TypeError) as error:
        raise WeightsError(f"cannot load weights '{weights}' into {name}: {error}") from error
    return model.eval()


def checkpoint_arch(weights: str | os.PathLike) -> str:
    """The architecture a checkpoint names ('arch'), for exporting it without naming a preset."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        return str(state["arch"])
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"'{weights}' is not a checkpoint that names its architecture: {error}") from error
