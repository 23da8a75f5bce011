"""The LFW protocols: View 2 verification pairs (pairs.txt) and Lai et al.'s rank-1 identification set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fhsdk.errors import DataNotFoundError


@dataclass(frozen=True)
class Pairs:
    """Verification pairs: indices into `images`, the match flag and the fold of every pair."""

    images: list[str]  # relative paths under lfw/images
    first: np.ndarray
    second: np.ndarray
    same: np.ndarray  # bool
    fold: np.ndarray


def lfw_image(name: str, number: int) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def check_lfw_dir(root: str | Path) -> Path:
    root = Path(root)
    if (root / "lfw").is_dir() and not (root / "pairs.txt").exists():
        root = root / "lfw"  # accept the shared data folder itself
    if not (root / "pairs.txt").is_file() or not (root / "images").is_dir():
        raise DataNotFoundError(
            f"no LFW found at {root}: expected pairs.txt and images/<Name>/<Name>_NNNN.jpg there; "
            "pass --data pointing at the lfw folder (e.g. ../shared/data/lfw)"
        )
    return root


def read_pairs(root: str | Path) -> Pairs:
    """Parse pairs.txt: a header 'folds n', then per fold n matched and n mismatched lines."""
    root = check_lfw_dir(root)
    lines = [line.split() for line in (root / "pairs.txt").read_text().splitlines() if line.strip()]
    folds, per_fold = int(lines[0][0]), int(lines[0][1])
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise DataNotFoundError(
            f"{root / 'pairs.txt'} has {len(body)} pair lines, expected {folds * 2 * per_fold}: "
            "the file is truncated or not the View 2 protocol"
        )
    index: dict[str, int] = {}
    first, second, same, fold = [], [], [], []
    for i, parts in enumerate(body):
        if len(parts) == 3:
            a, b, match = lfw_image(parts[0], parts[1]), lfw_image(parts[0], parts[2]), True
        elif len(parts) == 4:
            a, b, match = lfw_image(parts[0], parts[1]), lfw_image(parts[2], parts[3]), False
        else:
            raise DataNotFoundError(f"line {i + 2} of pairs.txt is malformed: {' '.join(parts)!r}")
        first.append(index.setdefault(a, len(index)))
        second.append(index.setdefault(b, len(index)))
        same.append(match)
        fold.append(i // (2 * per_fold))
    return Pairs(list(index), np.array(first), np.array(second), np.array(same), np.array(fold))


def identification_images(root: str | Path, min_images: int = 4) -> dict[str, list[str]]:
    """Identities with at least `min_images` images (Lai et al.'s rank-1 protocol) -> their images."""
    root = check_lfw_dir(root)
    people = {}
    for person in sorted(p for p in (root / "images").iterdir() if p.is_dir()):
        files = sorted(f"{person.name}/{f.name}" for f in person.glob("*.jpg"))
        if len(files) >= min_images:
            people[person.name] = files
    return people
