"""Training data: CelebA faces detected and aligned once, cached as one .npz, served as a Dataset.

The cache holds the canonical face region (fhsdk.align) of the most prominent face of every image at
the HR side: `images` uint8 N x S x S x 3 in RGB order, `labels` int64 CelebA identity numbers,
`files` the source paths relative to the data folder, plus `skipped` (files with no detected face).
Faces are found with fhsdk's own MTCNN; per image the face with the largest box, discounted by its
distance from the image centre, is kept (CelebA photos are centred on the labelled person).

Splits are by identity by default: validation people are never seen in training, which is what
identity preservation on unseen faces (and LFW later) asks for; `split="image"` holds out images of
training people instead (closed-set checks of the margin heads). LFW is never used here.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fhsdk.errors import DataNotFoundError

CACHE_VERSION = 1


def read_identities(celeba_dir: str | Path) -> list[tuple[str, int]]:
    """(relative image path, identity) for every row of identities.csv."""
    path = Path(celeba_dir) / "identities.csv"
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} not found: pass the CelebA subset folder (with images/ and identities.csv), "
            "e.g. ../shared/data/celeba_subset"
        )
    with open(path, newline="") as handle:
        return [(row["image"], int(row["identity"])) for row in csv.DictReader(handle)]


def pick_face(boxes: np.ndarray, image_shape: tuple[int, int]) -> int:
    """Index of the most prominent face: box area, discounted by the centre's distance from the image centre."""
    height, width = image_shape
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 / width, (boxes[:, 1] + boxes[:, 3]) / 2 / height], axis=1)
    offset = np.linalg.norm(centre - 0.5, axis=1)  # 0 at the centre, ~0.7 at a corner
    return int(np.argmax(area * np.clip(1 - offset, 0.05, 1)))


def default_cache_path(hr_side: int) -> Path:
    from fhsdk.weights import cache_dir

    return cache_dir() / "train" / f"celeba_subset_aligned_{hr_side}_v{CACHE_VERSION}.npz"


def build_cache(
    celeba_dir: str | Path,
    cache_path: str | Path,
    hr_side: int = 128,
    min_face_size: float = 20,
    device: str = "cpu",
    batch_size: int = 16,
    limit: int | None = None,
    progress: bool = True,
) -> Path:
    """Detect (MTCNN) and align (fhsdk.align) every CelebA image once; write the .npz cache."""
    from tqdm import tqdm

    from fhsdk.align import align
    from fhsdk.detect.mtcnn import MTCNN

    celeba_dir = Path(celeba_dir)
    rows = read_identities(celeba_dir)[:limit]
    detector = MTCNN(min_face_size=min_face_size, device=device)
    images, labels, files, skipped = [], [], [], []
    for start in tqdm(range(0, len(rows), batch_size), desc="detect+align", disable=not progress):
        chunk = rows[start : start + batch_size]
        frames = [cv2.imread(str(celeba_dir / name), cv2.IMREAD_COLOR) for name, _ in chunk]
        readable = [(row, frame) for row, frame in zip(chunk, frames) if frame is not None]
        skipped += [name for (name, _), frame in zip(chunk, frames) if frame is None]
        detections = detector.detect([frame for _, frame in readable])
        for ((name, identity), frame), found in zip(readable, detections):
            if len(found) == 0:
                skipped.append(name)
                continue
            best = pick_face(found.boxes, frame.shape[:2])
            crop = align(frame, found.landmarks[best : best + 1], hr_side)[0]
            images.append(crop[:, :, ::-1])  # BGR -> RGB: the training side works in RGB
            labels.append(identity)
            files.append(name)
    cache_path = Path(cache_path)
    write_cache(cache_path, np.stack(images), np.array(labels), files, skipped, source="mtcnn+fhsdk.align")
    return cache_path


def write_cache(
    path: str | Path, images: np.ndarray, labels: np.ndarray, files: Sequence[str], skipped: Sequence[str], source: str
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        images=np.ascontiguousarray(images, dtype=np.uint8),
        labels=np.asarray(labels, dtype=np.int64),
        files=np.asarray(files, dtype=str),
        skipped=np.asarray(skipped, dtype=str),
        source=np.asarray(source),
        version=np.asarray(CACHE_VERSION),
    )
    tmp.replace(path)


def load_cache(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"face cache {path} not found: build it with `python -m train.data CELEBA_DIR`")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def split_indices(labels: np.ndarray, by: str = "identity", val_fraction: float = 0.1, seed: int = 0):
    """(train indices, val indices). by='identity': whole people held out; by='image': images held out."""
    rng = np.random.default_rng(seed)
    if by == "identity":
        people = np.unique(labels)
        held = set(rng.permutation(people)[: int(round(len(people) * val_fraction))].tolist())
        val = np.array([label in held for label in labels])
    elif by == "image":
        # Hold out a fraction of each person's images, keeping at least one for training.
        val = np.zeros(len(labels), dtype=bool)
        for person in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == person))
            val[members[: min(int(round(len(members) * val_fraction)), len(members) - 1)]] = True
    else:
        raise ValueError(f"unknown split '{by}': choose 'identity' or 'image'")
    return np.flatnonzero(~val), np.flatnonzero(val)


class FaceCropDataset(Dataset):
    """Aligned HR faces from a cache: items are {"hr": 3 x S x S float RGB in [0, 1], "label", "index"}.

    `label` is the identity remapped to 0..num_classes-1 over this dataset's people (for margin heads);
    `index` is the item's position in this dataset (for compare faces and the super-resolved set).
    """

    def __init__(self, cache: dict[str, np.ndarray], indices: np.ndarray | None = None):
        indices = np.arange(len(cache["labels"])) if indices is None else np.asarray(indices)
        self.images = torch.from_numpy(np.ascontiguousarray(cache["images"][indices]))  # N x S x S x 3 uint8
        identities = cache["labels"][indices]
        self.identities, labels = np.unique(identities, return_inverse=True)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.files = cache["files"][indices]

    @property
    def num_classes(self) -> int:
        return len(self.identities)

    def __len__(self) -> int:
        return len(self.labels)

    def hr(self, indices: torch.Tensor) -> torch.Tensor:
        """Batch of HR faces by dataset index, N x 3 x S x S float in [0, 1]."""
        return self.images[indices].permute(0, 3, 1, 2).float().div_(255)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "hr": self.images[index].permute(2, 0, 1).float().div_(255),
            "label": self.labels[index],
            "index": torch.tensor(index),
        }


class EpochBatchSampler(Sampler[list[int]]):
    """Endless shuffled batches; epoch e's order depends only on (seed, e), so a run resumed at
    batch b sees exactly the batches an uninterrupted run would (no sampler state to checkpoint)."""

    def __init__(self, size: int, batch_size: int, seed: int, start_batch: int = 0):
        if size < batch_size:
            raise ValueError(f"the training set has {size} faces, fewer than one batch of {batch_size}")
        self.size, self.batch_size, self.seed, self.start_batch = size, batch_size, seed, start_batch
        self.per_epoch = size // batch_size  # drop the ragged tail

    def __iter__(self) -> Iterator[list[int]]:
        batch = self.start_batch
        while True:
            epoch, position = divmod(batch, self.per_epoch)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            yield order[position * self.batch_size : (position + 1) * self.batch_size].tolist()
            batch += 1


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Detect and align the CelebA subset once into an .npz cache.")
    parser.add_argument("celeba_dir", help="CelebA subset folder (images/, identities.csv)")
    parser.add_argument("--out", help="cache file (default: the fhsdk cache folder)")
    parser.add_argument("--hr-side", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, help="only the first N images (quick checks)")
    args = parser.parse_args(argv)
    out = build_cache(args.celeba_dir, args.out or default_cache_path(args.hr_side), args.hr_side, device=args.device, limit=args.limit)
    cache = load_cache(out)
    print(f"{out}: {len(cache['labels'])} faces of {len(np.unique(cache['labels']))} people, {len(cache['skipped'])} skipped")


if __name__ == "__main__":
    main()
