"""Saving training files atomically, and loading checkpoints without unpickling code.

A checkpoint holds tensors, plain Python values and NumPy's RNG state (a uint32 array). torch.load
with weights_only=True refuses every global it does not know; NumPy's array reconstruction is the one
we add, so a tampered checkpoint that names any other callable is refused instead of run.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from fhsdk.errors import WeightsError
from fhsdk.files import atomic_path

_NUMPY_ARRAY_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path} holds objects other than tensors and plain values (refused, never run): it was not "
            "written by `python -m train` or has been tampered with; resume from a checkpoint you trust"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise WeightsError(
            f"{path} is not a loadable training checkpoint ({str(error).splitlines()[0][:200]}): it is "
            "truncated or corrupt; resume from an earlier checkpoint in the same folder"
        ) from error


def atomic_save(obj, path: str | Path) -> Path:
    """torch.save through a temporary file, so a crash never leaves a half-written file under `path`."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
