"""`fhsdk bench WHICH`: runs a script of the source tree's benchmarks/ (not part of the installed package)."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from fhsdk.errors import DataNotFoundError

HELP = "run a benchmark of benchmarks/ (kernels, models, detector, video, crowd, gallery)"

# which -> (script of benchmarks/, its flag for the JSON it writes or None)
BENCHMARKS = {
    "kernels": ("bench_kernels.py", "--json"),
    "models": ("bench_models.py", "--out"),
    "detector": ("detector_accuracy.py", "--out"),
    "video": ("video_identification.py", "--out"),
    "crowd": ("crowd_throughput.py", "--out"),
    "gallery": ("gallery_search.py", None),
}
DEFAULT_BENCH_DIR = Path("out/bench")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_BENCH_DIR,
        help=f"folder for the benchmark's JSON (default {DEFAULT_BENCH_DIR}, like out/eval and out/demo); "
        "the script's own --out/--json wins",
    )
    parser.add_argument("which", choices=sorted(BENCHMARKS), help="which benchmark script of benchmarks/ to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its own arguments (see fhsdk bench WHICH --help)")


def run(args: argparse.Namespace) -> int:
    """Runs benchmarks/<script> of the source tree (benchmarks are not part of the installed package)."""
    name, out_flag = BENCHMARKS[args.which]
    script = Path(__file__).resolve().parents[2] / "benchmarks" / name
    if not script.is_file():
        raise DataNotFoundError(
            f"{script} not found: the benchmarks ship with the source tree; install it with pip install -e ."
        )
    script_args, out_dir = list(args.args), args.out_dir
    if "--out-dir" in script_args:  # also accepted after WHICH
        at = script_args.index("--out-dir")
        out_dir, script_args = Path(script_args[at + 1]), script_args[:at] + script_args[at + 2 :]
    if out_flag and not any(a == out_flag or a.startswith(out_flag + "=") for a in script_args):
        out_dir.mkdir(parents=True, exist_ok=True)
        script_args += [out_flag, str(out_dir / f"{Path(name).stem}.json")]
    saved = sys.argv
    sys.argv = [str(script), *script_args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved
    return 0
