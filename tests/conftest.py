import os
from pathlib import Path

import pytest

import fhsdk.detect  # noqa: F401  (registers the detectors' deployment presets)
import fhsdk.models  # noqa: F401  (registers the recogniser's and generators')

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FHSDK_DATA", REPO_ROOT.parent / "shared" / "data"))


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (set FHSDK_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA, "shared data folder")


@pytest.fixture(scope="session")
def lfw_dir(shared_data) -> Path:
    return _require(shared_data / "lfw", "LFW")


@pytest.fixture(scope="session")
def celeba_dir(shared_data) -> Path:
    return _require(shared_data / "celeba_subset", "CelebA subset")


@pytest.fixture(scope="session")
def celeba_extra_dir(shared_data) -> Path:
    return _require(shared_data / "celeba_extra", "CelebA extra identities")


@pytest.fixture(scope="session")
def video_dir(shared_data) -> Path:
    return _require(shared_data / "video", "video clips")
