"""A preset's network with a weights file loaded, for export and verification of trained models."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from fhsdk.errors import WeightsError
from fhsdk.models.hallucinator_file import read_hallucinator
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
    if isinstance(state, Mapping) and "arch" in state:  # a hallucinator file
        record = read_hallucinator(weights)
        if record.arch != name:
            raise WeightsError(
                f"'{weights}' holds a '{record.arch}' model, not '{name}': "
                f"export it as `fhsdk export {record.arch} --weights {weights}`"
            )
        build = record.build
    else:

        def build():
            model = get_preset(name).build()
            model.load_state_dict(state.get("state_dict", state))
            return model

    try:
        return build().eval()
    except (RuntimeError, KeyError, AttributeError, TypeError) as error:
        raise WeightsError(f"cannot load weights '{weights}' into {name}: {error}") from error


def checkpoint_arch(weights: str | os.PathLike) -> str:
    """The architecture a hallucinator file names, for exporting it without naming a preset."""
    return read_hallucinator(weights).arch
