"""`fhsdk enroll`: add people to a gallery from a folder of images or one image."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tqdm import tqdm

from fhsdk.cli.common import add_gallery_key_argument, add_pipeline_arguments, count, gallery_key, make_pipeline
from fhsdk.errors import InvalidInputError, OutputError
from fhsdk.gallery import check_writable

HELP = "add people to a gallery from images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", type=Path, help="a folder of name/*.jpg or name.jpg, or one image (with --name)")
    parser.add_argument("--gallery", type=Path, required=True, help="gallery file to create or extend (.npz)")
    parser.add_argument("--name", help="identity for a single image")
    add_gallery_key_argument(parser)
    add_pipeline_arguments(parser)


def run(args: argparse.Namespace) -> int:
    key = gallery_key(args)  # a missing key fails now, not after enrolling everyone
    args.gallery = check_writable(args.gallery)  # so does an unwritable path; 'people' extends people.npz
    pipe = make_pipeline(args, gallery=args.gallery if args.gallery.exists() else None)
    suffixes = {".jpg", ".jpeg", ".png", ".bmp"}
    if args.images.is_file():
        if not args.name:
            raise InvalidInputError("enrolling a single image needs --name")
        people = {args.name: [args.images]}
    elif args.images.is_dir():
        people = {}
        for entry in sorted(args.images.iterdir()):
            if entry.is_dir():
                files = sorted(f for f in entry.iterdir() if f.suffix.lower() in suffixes)
                if files:
                    people[entry.name] = files
            elif entry.suffix.lower() in suffixes:
                people.setdefault(entry.stem, []).append(entry)
    else:
        raise InvalidInputError(f"{args.images} is neither an image nor a folder")
    for name, files in tqdm(people.items(), desc="enrol"):
        pipe.enroll(name, files)
    path = _save_or_rescue(pipe.gallery, args.gallery, key)
    print(
        f"{count(len(people), 'person', 'people')} enrolled; gallery {path} holds "
        f"{count(len(pipe.gallery.identities), 'identity', 'identities')}"
    )
    return 0


def _save_or_rescue(gallery, path, key):
    """Save the enrolled gallery; if its path became unwritable meanwhile, save it in the temp folder
    instead and say where, so that no enrolment work is lost."""
    try:
        return gallery.save(path, key=key)
    except OutputError as error:
        rescue = gallery.save(Path(tempfile.mkdtemp(prefix="fhsdk-enrol-")) / "gallery.npz", key=key)
        raise OutputError(f"{error}. The enrolled gallery was saved to {rescue} instead: move it into place") from error
