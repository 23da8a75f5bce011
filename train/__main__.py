"""python -m train CONFIG [--preset NAME] [--resume] [--out DIR] [--seed N] [--set key=value ...]"""

from __future__ import annotations

import argparse
from pathlib import Path

from train.config import load_config
from train.runner import train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train", description="Train a face hallucination method.")
    parser.add_argument(
        "config", help="YAML config (a path, or a name in train/configs: lai, sicnn, cface, fhgan, ipfsrgan)"
    )
    parser.add_argument("--preset", help="preset of the config (default: its default_preset, cpu_small)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--out", help="run folder (default: runs/<config>-<preset>-seed<seed>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--data", help="CelebA subset folder (sets data.celeba_dir; used to build the face cache)")
    parser.add_argument("--cache", help="face cache .npz (sets data.cache)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. train.steps=100"
    )
    parser.add_argument("--threads", type=int, help="CPU threads for torch (sets train.threads)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    parser.add_argument(
        "--lfw",
        default="../shared/data/lfw",
        help="LFW folder for the evaluation at the end of the run (skipped with a note when absent)",
    )
    parser.add_argument("--eval-sizes", type=int, nargs="+", default=[12, 16], help="LR sides of that evaluation")
    parser.add_argument("--no-eval", action="store_true", help="skip the LFW evaluation at the end")
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
    if not args.no_eval and result["step"] >= cfg["train"]["steps"]:
        evaluate_run(Path(result["out_dir"]), Path(args.lfw), tuple(args.eval_sizes), args.device or "cpu")


def evaluate_run(out_dir: Path, lfw: Path, sizes: tuple[int, ...], device: str) -> Path | None:
    """The foundation harness on the run's exported generator (all 10 folds, verification only);
    the table goes to out_dir/lfw/ beside the checkpoints."""
    if not (lfw / "pairs.txt").is_file():
        print(f"LFW evaluation skipped: no pairs.txt in {lfw} (pass --lfw DIR, or --no-eval)")
        return None
    from fhsdk.embed import Embedder
    from fhsdk.eval.harness import EvalConfig, evaluate_lfw
    from fhsdk.eval.report import markdown_table, write_outputs
    from fhsdk.hallucinate import create_hallucinator

    config = EvalConfig(data=lfw, sizes=sizes, identification=False)
    hallucinator = create_hallucinator(str(out_dir / "generator.pt"), device=device)
    # The original recogniser always; the fine-tuned one too when the run exported it (deploy: finetuned).
    embedders = {"generator_bicubic": Embedder(device=device)}
    finetuned = out_dir / "recognizer_finetuned.pt"
    if finetuned.is_file():
        embedders["generator_finetuned_recognizer_bicubic"] = Embedder(device=device, weights=finetuned)
    for stem, embedder in embedders.items():
        result = evaluate_lfw(config, hallucinator, embedder)
        paths = write_outputs(result, out_dir / "lfw", stem)
        print(f"recogniser: {embedder.name}")
        print(markdown_table(result))
        print(f"LFW evaluation written: {paths['markdown']}")
    return paths["markdown"]


if __name__ == "__main__":
    main()
