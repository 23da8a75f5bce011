"""The `fhsdk` command line. Each subcommand has an `add_*_arguments` and a `run_*` function."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fhsdk.errors import FHSDKError


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", required=True)
    lfw = sub.add_parser("lfw", help="low-resolution LFW verification and rank-1 identification")
    lfw.add_argument("--data", type=Path, required=True, help="the LFW folder (pairs.txt, images/)")
    lfw.add_argument("--hallucinator", action="append", default=None,
                     help="'bicubic', 'default' or a .pt file; repeat to compare several (default: bicubic)")
    lfw.add_argument("--sizes", type=int, nargs="+", default=None, help="LR sides in px (default 8 12 16 24 32)")
    lfw.add_argument("--degradation", choices=["bicubic", "surveillance"], default="bicubic")
    lfw.add_argument("--folds", type=int, default=None, help="only the first K folds (quick runs)")
    lfw.add_argument("--max-identities", type=int, default=None, help="limit the identification set")
    lfw.add_argument("--no-identification", action="store_true")
    lfw.add_argument("--device", default="cpu")
    lfw.add_argument("--out", type=Path, default=Path("out/eval"))


def run_eval(args: argparse.Namespace) -> int:
    from fhsdk.align import LR_SIDES
    from fhsdk.embed import Embedder
    from fhsdk.eval.harness import EvalConfig, evaluate_lfw
    from fhsdk.eval.report import markdown_table, plot_accuracy, write_outputs
    from fhsdk.hallucinate import create_hallucinator

    config = EvalConfig(
        data=args.data,
        sizes=tuple(args.sizes or LR_SIDES),
        degradation=args.degradation,
        folds=args.folds,
        identification=not args.no_identification,
        max_identities=args.max_identities,
    )
    embedder = Embedder(device=args.device)
    results = {}
    for spec in args.hallucinator or ["bicubic"]:
        hallucinator = create_hallucinator(spec, device=args.device)
        result = evaluate_lfw(config, hallucinator, embedder)
        results[hallucinator.name] = result
        paths = write_outputs(result, args.out, f"{hallucinator.name}_{config.degradation}")
        print(f"\n## {hallucinator.name} ({config.degradation}; {result.meta['pairs']} pairs, "
              f"{result.meta['folds']} folds, {result.meta['seconds']} s)\n")
        print(markdown_table(result))
        print(f"written: {', '.join(str(p) for p in paths.values())}")
    if len(results) > 1:
        plot_accuracy(results, args.out / f"lfw_compare_{config.degradation}.png")
    return 0


COMMANDS = {
    "eval": ("evaluate recognition of low-resolution faces", add_eval_arguments, run_eval),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhsdk", description="Identity-preserving face hallucination SDK")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command][2](args)
    except FHSDKError as error:
        print(f"fhsdk: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
