"""Face embedding: crops of the canonical region at any side -> unit-norm identity vectors.

The recogniser's chip is the canonical region at side 150, so embedding a crop is: resize to 150
(bilinear), normalise as the recogniser expects, run the network, L2-normalise. The resize and
normalisation are one fused op (`fhsdk.kernels.resize_normalize_batch`) when the native extension
is built.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fhsdk import kernels
from fhsdk.errors import WeightsError
from fhsdk.images import as_crop_batch
from fhsdk.models import create_model
from fhsdk.runtime.module_adapter import runner
from fhsdk.weights import PACKAGED_DIR, check_packaged

# Recogniser weights shipped inside the package, by name (docs/MODEL_CARD.md). `adapted` is dlib's ResNet
# fine-tuned so that hallucinated and tiny faces give the original's embedding of the HR face
# (train/procedures/distill.py): Pipeline embeds the faces it hallucinates with it, while galleries keep
# the original's embeddings, so every gallery file stays valid.
PACKAGED_RECOGNIZERS = {"adapted": PACKAGED_DIR / "recognizer_adapted.pt"}
DEFAULT_RECOGNIZER = "dlib_resnet_v1"
ORIGINAL = "original"  # names the recogniser's own (dlib's shipped) weights, like None
ENSEMBLE_SEPARATOR = "+"  # 'original+adapted': each face embedded by both, the mean direction kept (EmbedderEnsemble)


def is_original(weights: str | Path | None) -> bool:
    """Whether a `weights` argument means the recogniser's own weights (None or 'original')."""
    return weights is None or str(weights) == ORIGINAL


class Embedder:
    def __init__(
        self,
        recognizer: str = DEFAULT_RECOGNIZER,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        backend: str = "torch",
        weights: str | Path | None = None,
    ):
        """`weights`: a packaged fine-tune by name ('adapted') or a recogniser state dict fine-tuned during
        training (`python -m train.export_weights RUN --recognizer`) in place of dlib's shipped weights;
        the name and fingerprint then say so. None or 'original': the shipped weights."""
        self.device = torch.device(device)
        self.network = create_model(recognizer, pretrained=True)
        self.name = load_recognizer_weights(self.network, weights, recognizer)
        self.network = self.network.to(self.device).eval()
        # What the network says of itself: its chip side, normalisation and embedding size.
        self.input_side = int(self.network.input_size)
        self._mean, self._scale = tuple(self.network.rgb_mean), float(self.network.rgb_scale)
        self.dim = int(self.network.embedding_dim)
        self.batch_size = batch_size
        self.fingerprint = _fingerprint(self.network, recognizer)
        self._forward = runner(self.network, recognizer, backend, str(self.device))

    def preprocess(self, crops: np.ndarray) -> torch.Tensor:
        """BGR uint8 N x s x s x 3 -> the network's N x 3 x 150 x 150 input (fused resize + normalise)."""
        rgb = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        batch = kernels.resize_normalize_batch(rgb, self.input_side, self._mean, self._scale)
        return torch.from_numpy(batch).to(self.device)

    def preprocess_frame(self, frame: np.ndarray, to_chip: np.ndarray) -> torch.Tensor:
        """Faces straight from a BGR frame (N x 2 x 3 frame->chip matrices) to the network's input."""
        batch = kernels.resize_normalize_affine(frame, to_chip, self.input_side, self._mean, self._scale, swap_rb=True)
        return torch.from_numpy(batch).to(self.device)

    def embed_tensor(self, rgb: torch.Tensor) -> np.ndarray:
        """float32 RGB N x 3 x H x W (0-255) on any device -> embeddings; the resize and normalisation
        run where the tensor is (the fused CUDA kernel on a GPU), so it never visits the host."""
        return _in_batches(len(rgb), self, lambda rows: self.embed_preprocessed(self.preprocess_tensor(rgb[rows])))

    def preprocess_tensor(self, rgb: torch.Tensor) -> torch.Tensor:
        """float32 RGB N x 3 x H x W (0-255) on any device -> the network's input, on its device."""
        batch = kernels.resize_normalize_batch(
            rgb.to(self.device).contiguous(), self.input_side, self._mean, self._scale
        )
        return batch if isinstance(batch, torch.Tensor) else torch.from_numpy(batch).to(self.device)

    @torch.no_grad()
    def embed_preprocessed(self, batch: torch.Tensor) -> np.ndarray:
        return _in_batches(len(batch), self, lambda rows: F.normalize(self._forward(batch[rows]), dim=1).cpu().numpy())

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = as_crop_batch(crops)
        return _in_batches(len(crops), self, lambda rows: self.embed_preprocessed(self.preprocess(crops[rows])))


def _in_batches(count: int, embedder, embed_rows) -> np.ndarray:
    """count x embedder.dim float32 embeddings, `embed_rows(rows)` computing those of each slice of at most
    embedder.batch_size rows (the memory a batch may take)."""
    out = np.empty((count, embedder.dim), dtype=np.float32)
    for start in range(0, count, embedder.batch_size):
        rows = slice(start, start + embedder.batch_size)
        out[rows] = embed_rows(rows)
    return out


def _fingerprint(network: torch.nn.Module, name: str) -> str:
    """A short hash of the recogniser's weights: galleries and caches record it."""
    digest = hashlib.sha256(name.encode())
    for key, tensor in sorted(network.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_recognizer_weights(network: torch.nn.Module, weights: str | Path | None, recognizer: str) -> str:
    """Load a packaged fine-tune ('adapted') or an exported state dict into `network`, a `recognizer`
    built with its shipped weights; None or 'original' keeps those. Returns the name that says which."""
    if is_original(weights):
        return recognizer
    path, name = _finetuned_path(weights, recognizer)
    _load_finetuned(network, path)
    return name


def _finetuned_path(weights: str | Path, recognizer: str) -> tuple[Path, str]:
    """(weight file, the recogniser's name) for a packaged fine-tune's name or a state dict's path."""
    if str(weights) in PACKAGED_RECOGNIZERS:
        path = PACKAGED_RECOGNIZERS[str(weights)]
        check_packaged(path, "recogniser", str(weights), "pass a .pt path or None")
        return path, f"{recognizer} {weights}"
    return Path(weights), f"{recognizer} fine-tuned ({Path(weights).name})"


def _load_finetuned(network: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise WeightsError(
            f"recogniser weights not found at {path}: export them with "
            "`python -m train.export_weights RUN_DIR --recognizer`"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except (TypeError, RuntimeError, OSError, ValueError, EOFError, AttributeError, pickle.UnpicklingError) as error:
        raise WeightsError(
            f"{path} is not a state dict of this recogniser ({error}): export one with "
            "`python -m train.export_weights RUN_DIR --recognizer`"
        ) from error


class EmbedderEnsemble:
    """Several recognisers with one embedding space (fine-tunes distilled from the same original) as one:
    a face's embedding is the mean direction of theirs. Each alone moves some faces' cosines the wrong way;
    their mean keeps what they agree on (docs/RESULTS.md)."""

    def __init__(self, members: list[Embedder]):
        # one input for all: each face is resized and normalised once, then run through every member
        if len({(m.dim, m.input_side, m._mean, m._scale, str(m.device)) for m in members}) != 1:
            raise WeightsError(
                "recognisers in an ensemble must share their embedding size, input side, normalisation and device"
            )
        self.members = members
        self.name = " + ".join(m.name for m in members)
        self.dim, self.input_side, self.batch_size = members[0].dim, members[0].input_side, members[0].batch_size

    def embed_tensor(self, rgb: torch.Tensor) -> np.ndarray:
        first = self.members[0]
        return _in_batches(len(rgb), self, lambda rows: self.embed_preprocessed(first.preprocess_tensor(rgb[rows])))

    def embed_preprocessed(self, batch: torch.Tensor) -> np.ndarray:
        return mean_direction(*(m.embed_preprocessed(batch) for m in self.members))

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = as_crop_batch(crops)
        first = self.members[0]
        return _in_batches(len(crops), self, lambda rows: self.embed_preprocessed(first.preprocess(crops[rows])))


def mean_direction(*embeddings: np.ndarray) -> np.ndarray:
    """The unit vector along the mean of several sets of unit embeddings (row-wise)."""
    mean = np.sum(embeddings, axis=0)
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)


def create_lr_recognizer(
    embedder: Embedder, recognizer: str, weights: str | Path | None, *, device: str = "cpu", backend: str = "torch"
) -> Embedder | EmbedderEnsemble:
    """The recogniser for hallucinated faces: `embedder` (the `recognizer` network) itself for 'original'
    (None); a copy of that network with other `weights` ('adapted' or a state dict's path); for 'A+B'
    (e.g. 'original+adapted') the EmbedderEnsemble of those, sharing `embedder` for 'original'."""
    if is_original(weights):
        return embedder
    members = ensemble_members(weights)
    if members is None:
        return create_recognizer(recognizer, device=device, backend=backend, weights=weights)
    return EmbedderEnsemble(
        [
            embedder
            if is_original(part)
            else create_recognizer(recognizer, device=device, backend=backend, weights=part)
            for part in members
        ]
    )


def ensemble_members(weights: str | Path | None) -> list[str] | None:
    """The members an 'A+B' weights argument names (e.g. ['original', 'adapted']); None for one recogniser."""
    if weights is None or Path(weights).is_file() or ENSEMBLE_SEPARATOR not in str(weights):
        return None
    parts = str(weights).split(ENSEMBLE_SEPARATOR)
    if len(set(parts)) != len(parts) or not all(parts):
        raise WeightsError(
            f"recogniser weights '{weights}' name a member twice or an empty one: use e.g. 'original+adapted'"
        )
    return parts


def create_recognizer(
    name: str = DEFAULT_RECOGNIZER, *, device: str = "cpu", backend: str = "torch", weights: str | Path | None = None
) -> Embedder:
    """The recogniser stage, built like the others (fhsdk.stages): by name, device and backend."""
    return Embedder(name, device=device, backend=backend, weights=weights)
