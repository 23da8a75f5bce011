"""The `fhsdk` command line: one module per command, each with HELP, `add_arguments(parser)` and
`run(args) -> exit code`. Adding a command is one module and one line in COMMANDS."""

from __future__ import annotations

import argparse
import logging
import sys

from fhsdk.cli import bench, build_engine, demo, enroll, export, run, verify
from fhsdk.cli import eval as eval_command
from fhsdk.errors import FHSDKError

COMMANDS = {
    "demo": demo,
    "run": run,
    "enroll": enroll,
    "eval": eval_command,
    "export": export,
    "build-engine": build_engine,
    "verify": verify,
    "bench": bench,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhsdk", description="Identity-preserving face hallucination SDK")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return COMMANDS[args.command].run(args)
    except FHSDKError as error:
        print(f"fhsdk: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
