"""Training data: CelebA faces detected and aligned once, cached as one .npz, served as a Dataset.

The cache holds the canonical face region (fhsdk.align) of the most prominent face of every image of
one or more CelebA folders at the HR side: `images` uint8 N x S x S x 3 in RGB order, `labels` int64
CelebA identity numbers (shared by both folders, which hold different people), `files` the paths
relative to their folder, `sources` each face's folder name, `framings` how its file was framed ("in the
wild", "tight crop", "aligned half-size"), plus `skipped`, `skipped_sources` and `skipped_reasons` for
the files that gave no face. Faces are found with fhsdk's own MTCNN; per image the face with the largest
box, discounted by its distance from the image centre, is kept (CelebA photos are centred on the
labelled person). Tight crops and aligned half-size files are padded first (`pad_for_detection`).

Splits are by identity by default: validation people are never seen in training, which is what
identity preservation on unseen faces (and LFW later) asks for; `split="image"` holds out images of
training people instead (closed-set checks of the margin heads). LFW is never used here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fhsdk.errors import ConfigError, DataNotFoundError
from fhsdk.files import atomic_path

CACHE_VERSION = 2  # 2: per-face sources and framings, skip reasons; several source folders


FRAMING_WILD = "in the wild"  # celeba_subset's photos; its identities.csv has no framing column
# Tight crops cut the chin or forehead, and the canonical region has margin beyond the face box, so
# these framings are padded (edge pixels replicated, which makes no mirrored second face) before
# detection and alignment: by at least this fraction of the image's side on every side.
PAD_FRACTION = {"tight crop": 0.5, "aligned half-size": 0.5}
# Tight crops are padded further to one canvas (H, W) when they fit it (about 90% of them), so the
# detector runs on same-sized images in one batch; their face fills the crop (77-89 px wide), so the
# detector need not look for faces below MIN_FACE_SIZE px there.
CANVAS = {"tight crop": (240, 192)}
MIN_FACE_SIZE = {"tight crop": 40.0}
SKIP_UNREADABLE, SKIP_NO_FACE = "unreadable", "no face detected"


def read_identities(celeba_dir: str | Path) -> list[tuple[str, int]]:
    """(relative image path, identity) for every row of identities.csv."""
    return [(name, identity) for name, identity, _ in read_rows(celeba_dir)]


def read_rows(celeba_dir: str | Path) -> list[tuple[str, int, str]]:
    """(relative image path, identity, framing) for every row of identities.csv."""
    path = Path(celeba_dir) / "identities.csv"
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} not found: pass a CelebA folder (with images/ and identities.csv), "
            "e.g. ../shared/data/celeba_subset or ../shared/data/celeba_extra"
        )
    with open(path, newline="") as handle:
        return [
            (row["image"], int(row["identity"]), row.get("framing") or FRAMING_WILD) for row in csv.DictReader(handle)
        ]


def pad_for_detection(frame: np.ndarray, framing: str) -> np.ndarray:
    """The frame with room around a tightly framed face (replicated edges); other framings unchanged."""
    fraction = PAD_FRACTION.get(framing, 0.0)
    if not fraction:
        return frame
    height, width = frame.shape[:2]
    canvas = CANVAS.get(framing, (0, 0))
    padded_h = max(canvas[0], height + 2 * int(round(fraction * height)))
    padded_w = max(canvas[1], width + 2 * int(round(fraction * width)))
    top, left = (padded_h - height) // 2, (padded_w - width) // 2
    return cv2.copyMakeBorder(frame, top, padded_h - height - top, left, padded_w - width - left, cv2.BORDER_REPLICATE)


def pick_face(boxes: np.ndarray, image_shape: tuple[int, int]) -> int:
    """Index of the most prominent face: box area, discounted by the centre's distance from the image centre."""
    height, width = image_shape
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2 / width, (boxes[:, 1] + boxes[:, 3]) / 2 / height], axis=1)
    offset = np.linalg.norm(centre - 0.5, axis=1)  # 0 at the centre, ~0.7 at a corner
    return int(np.argmax(area * np.clip(1 - offset, 0.05, 1)))


def _as_dirs(celeba_dirs) -> list[Path]:
    return [Path(celeba_dirs)] if isinstance(celeba_dirs, (str, Path)) else [Path(d) for d in celeba_dirs]


def default_cache_path(hr_side: int, celeba_dirs=("celeba_subset",)) -> Path:
    """$FHSDK_CACHE/train/<source>+<source>_aligned_<side>_v<version>.npz, named by the source folders."""
    from fhsdk.weights import cache_dir

    names = "+".join(d.name for d in _as_dirs(celeba_dirs))
    return cache_dir() / "train" / f"{names}_aligned_{hr_side}_v{CACHE_VERSION}.npz"


def build_cache(
    celeba_dirs,
    cache_path: str | Path,
    hr_side: int = 128,
    min_face_size: float = 20,
    device: str = "cpu",
    batch_size: int = 16,
    limit: int | None = None,
    progress: bool = True,
    shard_size: int = 512,
) -> Path:
    """Detect (MTCNN) and align (fhsdk.align) every image of one or more CelebA folders; write the cache.

    Work is saved in shards of `shard_size` images next to the cache (`<cache>.parts/`), so an
    interrupted build resumes where it stopped. `limit` keeps the first N images of each folder.
    """
    from tqdm import tqdm

    dirs = _as_dirs(celeba_dirs)
    rows = [(d, *row) for d in dirs for row in read_rows(d)[:limit]]
    cache_path = Path(cache_path)
    parts = cache_path.with_name(cache_path.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    settings = {
        "sources": [str(d.resolve()) for d in dirs],
        "hr_side": hr_side,
        "min_face_size": min_face_size,
        "limit": limit,
        "shard_size": shard_size,
        "pad": PAD_FRACTION,
        "canvas": CANVAS,
        "min_face_by_framing": MIN_FACE_SIZE,
        "version": CACHE_VERSION,
    }
    settings = json.loads(json.dumps(settings))  # as stored (tuples become lists)
    manifest = parts / "settings.json"
    if manifest.is_file() and json.loads(manifest.read_text()) != settings:
        raise ConfigError(f"{parts} holds a partial build with other settings; delete that folder to start over")
    manifest.write_text(json.dumps(settings))

    detector = None
    shards = []
    with tqdm(total=len(rows), desc="detect+align", unit="img", disable=not progress) as bar:
        for number, start in enumerate(range(0, len(rows), shard_size)):
            shard = parts / f"{number:05d}.npz"
            if not shard.is_file():
                detector = detector or _detector(min_face_size, device)
                _write_shard(
                    shard, _detect_and_align(rows[start : start + shard_size], detector, hr_side, batch_size, bar)
                )
            else:
                bar.update(len(rows[start : start + shard_size]))
            shards.append(shard)
    loaded = [dict(np.load(shard, allow_pickle=False)) for shard in shards]
    joined = {key: np.concatenate([part[key] for part in loaded]) for key in loaded[0]}
    write_cache(
        cache_path,
        joined["images"].reshape(-1, hr_side, hr_side, 3),
        joined["labels"],
        joined["files"],
        joined["skipped"],
        source="mtcnn+fhsdk.align",
        sources=joined["sources"],
        framings=joined["framings"],
        skipped_sources=joined["skipped_sources"],
        skipped_reasons=joined["skipped_reasons"],
    )
    for shard in shards:
        shard.unlink()
    manifest.unlink()
    parts.rmdir()
    return cache_path


def _detector(min_face_size: float, device: str):
    from fhsdk.detect.mtcnn import MTCNN

    return MTCNN(min_face_size=min_face_size, device=device)


def _detect_and_align(rows, detector, hr_side: int, batch_size: int, bar) -> dict[str, np.ndarray]:
    from fhsdk.align import align

    out = {
        key: []
        for key in ("images", "labels", "files", "sources", "framings", "skipped", "skipped_sources", "skipped_reasons")
    }

    def skip(folder, name, reason):
        out["skipped"].append(name)
        out["skipped_sources"].append(folder.name)
        out["skipped_reasons"].append(reason)

    default_min_face = detector.min_face_size
    # One framing per batch: its own padding and smallest face.
    batches = [
        group[i : i + batch_size]
        for framing in sorted({row[3] for row in rows})
        for group in [[row for row in rows if row[3] == framing]]
        for i in range(0, len(group), batch_size)
    ]
    for chunk in batches:
        detector.min_face_size = MIN_FACE_SIZE.get(chunk[0][3], default_min_face)
        readable = []
        for folder, name, identity, framing in chunk:
            frame = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if frame is None:
                skip(folder, name, SKIP_UNREADABLE)
            else:
                readable.append(((folder, name, identity, framing), pad_for_detection(frame, framing)))
        for ((folder, name, identity, framing), frame), found in zip(
            readable, detector.detect([f for _, f in readable])
        ):
            if len(found) == 0:
                skip(folder, name, SKIP_NO_FACE)
                continue
            best = pick_face(found.boxes, frame.shape[:2])
            out["images"].append(align(frame, found.landmarks[best : best + 1], hr_side)[0, :, :, ::-1])  # BGR -> RGB
            out["labels"].append(identity)
            out["files"].append(name)
            out["sources"].append(folder.name)
            out["framings"].append(framing)
        bar.update(len(chunk))
    detector.min_face_size = default_min_face
    images = np.stack(out.pop("images")) if out["labels"] else np.zeros((0, hr_side, hr_side, 3), np.uint8)
    return {
        "images": images,
        "labels": np.asarray(out.pop("labels"), dtype=np.int64),
        **{key: np.asarray(value, dtype=str) for key, value in out.items()},
    }


def _write_shard(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def write_cache(
    path: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    files: Sequence[str],
    skipped: Sequence[str],
    source: str,
    sources: Sequence[str] | None = None,
    framings: Sequence[str] | None = None,
    skipped_sources: Sequence[str] | None = None,
    skipped_reasons: Sequence[str] | None = None,
) -> None:
    """`sources`/`framings`: per face, the data folder's name and how the file was framed;
    `skipped_sources`/`skipped_reasons`: per skipped file, its folder and why (default: unknown)."""
    path = Path(path)

    def per_row(values, count):
        return np.asarray(values if values is not None else ["unknown"] * count, dtype=str)

    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            images=np.ascontiguousarray(images, dtype=np.uint8),
            labels=np.asarray(labels, dtype=np.int64),
            files=np.asarray(files, dtype=str),
            skipped=np.asarray(skipped, dtype=str),
            sources=per_row(sources, len(labels)),
            framings=per_row(framings, len(labels)),
            skipped_sources=per_row(skipped_sources, len(skipped)),
            skipped_reasons=per_row(skipped_reasons, len(skipped)),
            source=np.asarray(source),
            version=np.asarray(CACHE_VERSION),
        )


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


def config_cache_path(data_cfg: dict) -> Path:
    """The face cache a config's `data:` section names, or the default one for its folders and side."""
    return Path(data_cfg["cache"] or default_cache_path(data_cfg["hr_side"], data_cfg["celeba_dir"] or "celeba_subset"))


def split_cache(data_cfg: dict) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(the face cache, training indices, validation indices), split as the config says; the split is
    seeded once (0), so training and every validation tool hold out the same people."""
    cache = load_cache(config_cache_path(data_cfg))
    train, val = split_indices(cache["labels"], data_cfg["split"], data_cfg["val_fraction"], seed=0)
    return cache, train, val


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


def source_report(cache: dict[str, np.ndarray]) -> list[dict]:
    """Per source folder and framing: faces kept, people, and files dropped by reason."""
    rows = []
    for source in sorted(set(cache["sources"].tolist()) | set(cache["skipped_sources"].tolist())):
        kept = cache["sources"] == source
        dropped = cache["skipped_reasons"][cache["skipped_sources"] == source]
        framings = {f: int((cache["framings"][kept] == f).sum()) for f in sorted(set(cache["framings"][kept].tolist()))}
        rows.append(
            {
                "source": source,
                "faces": int(kept.sum()),
                "people": len(np.unique(cache["labels"][kept])),
                "framings": framings,
                "dropped": {r: int((dropped == r).sum()) for r in sorted(set(dropped.tolist()))},
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Detect and align CelebA folders once into one .npz face cache.")
    parser.add_argument(
        "celeba_dirs",
        nargs="+",
        help="CelebA folders (images/, identities.csv), e.g. ../shared/data/celeba_subset ../shared/data/celeba_extra",
    )
    parser.add_argument("--out", help="cache file (default: the fhsdk cache folder, named by the folders)")
    parser.add_argument("--hr-side", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, help="only the first N images of each folder (quick checks)")
    args = parser.parse_args(argv)
    out = args.out or default_cache_path(args.hr_side, args.celeba_dirs)
    out = build_cache(args.celeba_dirs, out, args.hr_side, device=args.device, limit=args.limit)
    cache = load_cache(out)
    print(
        f"{out}: {len(cache['labels'])} faces of {len(np.unique(cache['labels']))} people, {len(cache['skipped'])} skipped"
    )
    for row in source_report(cache):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
