"""python -m train CONFIG [--preset NAME] [--resume] [--out DIR] [--seed N] [--set key=value ...]"""

from __future__ import annotations

import argparse
from pathlib import Path

from train.config import load_config
from train.runner import train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train", description="Train a face hallucination method.")
    parser.add_argument("config", help="YAML config (a path, or a name in train/configs: lai, sicnn, cface, fhgan, ipfsrgan)")
    parser.add_argument("--preset", help="preset of the config (default: its default_preset, cpu_small)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--out", help="run folder (default: runs/<config>-<preset>-seed<seed>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--data", help="CelebA subset folder (sets data.celeba_dir; used to build the face cache)")
    parser.add_argument("--cache", help="face cache .npz (sets data.cache)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. train.steps=100")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (sets train.threads)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    args = parser.parse_args(argv)

    overrides = list(args.set)
    if args.threads:
        overrides.append(f"train.threads={args.threads}")
    if args.data:
        overrides.append(f"data.celeba_dir={args.data}")
    if args.cache:
        overrides.append(f"data.cache={args.cache}")
    cfg = load_config(args.config, args.preset, overrides)
    out = args.out or Path("runs") / f"{Path(cfg['config_file']).stem}-{cfg['preset']}-seed{args.seed}"
    result = train(cfg, out, seed=args.seed, resume=args.resume, device=args.device, progress=not args.no_progress)
    losses = ", ".join(f"{k}={v:.4g}" for k, v in result["losses"].items())
    print(f"{result['out_dir']}: step {result['step']}: {losses}")


if __name__ == "__main__":
    main()
