"""Mean of one loss column of a run's log over step ranges: how a loss moved during a run.

python tools/log_means.py runs/sicnn-integrated/log.csv super_identity 1-50 450-500
"""

from __future__ import annotations

import argparse
import math

from train.runner import read_log


def step_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="a run's log.csv")
    parser.add_argument("column")
    parser.add_argument("ranges", nargs="+", type=step_range, metavar="FIRST-LAST")
    args = parser.parse_args()
    rows = read_log(args.log)
    if rows and args.column not in rows[0]:
        parser.error(f"no column {args.column!r} in {args.log}: it has {', '.join(rows[0])}")
    for first, last in args.ranges:
        values = [float(r[args.column]) for r in rows if first <= int(r["step"]) <= last]
        mean = sum(values) / len(values) if values else math.nan
        print(f"steps {first}-{last}: mean {args.column} {mean:.4f} over {len(values)} rows")


if __name__ == "__main__":
    main()
