"""The hallucinator file format, in one place: `python -m train` writes it, `fhsdk.hallucinate` reads it.

A plain dict that `torch.load(..., weights_only=True)` reads without running any pickled code:
    arch         registered architecture name (fhsdk.models)
    arch_kwargs  its constructor's arguments
    native_side  the LR side the generator takes
    hr_side      the side it returns (native_side x its scale)
    name, step   which run and step it came from
    state_dict   the weights (CPU tensors)
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from fhsdk.errors import WeightsError
from fhsdk.files import atomic_path
from fhsdk.models.registry import create_model

_FIX = "export one with `python -m train.export_weights RUN_DIR`"


@dataclass(frozen=True)
class HallucinatorFile:
    arch: str
    arch_kwargs: dict
    native_side: int
    hr_side: int
    name: str
    step: int
    state_dict: dict

    def build(self) -> nn.Module:
        """The generator with these weights, in eval mode."""
        generator = create_model(self.arch, **self.arch_kwargs)
        generator.load_state_dict(self.state_dict)
        return generator.eval()


def write_hallucinator(
    path: str | Path, *, arch: str, arch_kwargs: dict, native_side: int, state_dict: dict, name: str, step: int
) -> Path:
    record = HallucinatorFile(
        arch=arch,
        arch_kwargs=dict(arch_kwargs),
        native_side=int(native_side),
        hr_side=int(native_side * arch_kwargs.get("scale", 4)),
        name=name,
        step=int(step),
        state_dict={key: value.detach().cpu() for key, value in state_dict.items()},
    )
    with atomic_path(path) as tmp:
        torch.save(asdict(record), tmp)
    return Path(path)


def read_hallucinator(path: str | Path) -> HallucinatorFile:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"hallucinator weights not found at {path}: pass an existing .pt file")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        return HallucinatorFile(
            arch=str(record["arch"]),
            arch_kwargs=dict(record.get("arch_kwargs", {})),
            native_side=int(record["native_side"]),
            hr_side=int(record["hr_side"]),
            name=str(record.get("name", path.stem)),
            step=int(record.get("step", 0)),
            state_dict=dict(record["state_dict"]),
        )
    except (KeyError, TypeError, RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        # weights_only=True refuses pickled code with UnpicklingError: it is never run
        raise WeightsError(f"{path} is not a valid fhsdk hallucinator file ({error}): {_FIX}") from error
