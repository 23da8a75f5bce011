"""Export a run's generator as an fhsdk hallucinator file (what `fhsdk.hallucinate` loads).

    python -m train.export_weights RUN_DIR [--checkpoint FILE] [--out FILE]
    python -m train.export_weights RUN_DIR --recognizer      # the recogniser the run fine-tuned
    python -m train.export_weights RUN_DIR --recognizer --float16 --out fhsdk/weights/recognizer_adapted.pt
    python -m train.export_weights RUN_DIR --recognizer --checkpoint A.pt B.pt C.pt   # their weights' mean

The file's format is `fhsdk/models/hallucinator_file.py`'s (one place for writer and reader). Only the generator
is exported: evaluation and deployment keep the original recogniser (a recogniser fine-tuned during
training is exported separately: by the run when its config says `deploy: {recognizer: finetuned}`, or
on request with --recognizer, as a state dict `fhsdk.embed.Embedder(weights=...)` loads).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from fhsdk.errors import ConfigError
from fhsdk.models.hallucinator_file import write_hallucinator
from train.checkpoint_io import atomic_save, load_checkpoint
from train.config import same_run


def save_hallucinator(cfg: dict, state_dict: dict, step: int, path: str | Path) -> Path:
    """The run's generator as a hallucinator file (fhsdk/models/hallucinator_file.py has the format)."""
    kwargs = dict(cfg["generator"])
    arch, native_side = kwargs.pop("name"), kwargs.pop("lr_side")
    return write_hallucinator(
        path,
        arch=arch,
        arch_kwargs=kwargs,
        native_side=native_side,
        state_dict=state_dict,
        name=f"{cfg['method']}-{cfg.get('preset')}-seed{cfg.get('seed', 0)}",
        step=step,
    )


def _run_checkpoint(run_dir: Path, checkpoint: str | Path | Sequence[str | Path] | None) -> tuple[str, dict]:
    """(what was read, the checkpoint). Several checkpoints of one run give one whose networks hold the mean
    of their weights (weight averaging along the trajectory, as SWA: steadier than any one step's); its
    step is the last one's."""
    paths = [Path(p) for p in ([checkpoint] if isinstance(checkpoint, (str, Path)) else checkpoint or [])]
    paths = paths or [run_dir / "checkpoints" / "last.pt"]
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"no checkpoint at {path}: pass a run folder written by `python -m train`")
    states = [load_checkpoint(path) for path in paths]
    if any(not same_run(s["config"], states[0]["config"]) for s in states):
        raise ConfigError(f"{', '.join(map(str, paths))} are not checkpoints of one run: only those can be averaged")
    state = max(states, key=lambda s: s["step"])
    if len(states) > 1:
        networks = [s["procedure"]["networks"] for s in states]
        state["procedure"]["networks"] = {name: _mean_state([n[name] for n in networks]) for name in networks[0]}
    return ", ".join(map(str, paths)), state


def _mean_state(states: list[dict]) -> dict:
    """Element-wise mean of floating-point tensors (integer buffers are taken from the first)."""
    return {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


def export_run(
    run_dir: str | Path, checkpoint: str | Path | Sequence[str | Path] | None = None, out: str | Path | None = None
) -> Path:
    run_dir = Path(run_dir)
    _, state = _run_checkpoint(run_dir, checkpoint)
    return save_hallucinator(
        state["config"], state["procedure"]["networks"]["generator"], state["step"], out or run_dir / "generator.pt"
    )


def export_recognizer(
    run_dir: str | Path,
    checkpoint: str | Path | Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    float16: bool = False,
) -> Path:
    """The run's recogniser backbone as a state dict: fine-tuned by domain-integrated SICNN, C-Face's
    stages 3-4, FH-GAN and the distillation; a frozen-recogniser run gives back the shipped weights.
    `float16` halves the file (for packaging; Embedder loads it into float32)."""
    run_dir = Path(run_dir)
    checkpoint, state = _run_checkpoint(run_dir, checkpoint)
    recognizer = state["procedure"]["networks"].get("recognizer")
    if recognizer is None:
        raise ConfigError(f"the checkpoint {checkpoint} holds no recogniser, so there is none to export")
    prefix = "backbone."  # the training wrapper's; the backbone alone is what Embedder loads
    backbone = {k[len(prefix) :]: v.detach().cpu() for k, v in recognizer.items() if k.startswith(prefix)}
    if float16:
        backbone = {k: v.half() if v.is_floating_point() else v for k, v in backbone.items()}
    return atomic_save(backbone, out or run_dir / "recognizer_finetuned.pt")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.export_weights", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        help="checkpoint file (default: RUN_DIR/checkpoints/last.pt); several of one run: their weights' mean",
    )
    parser.add_argument("--out", help="output file (default: RUN_DIR/generator.pt, or RUN_DIR/recognizer_finetuned.pt)")
    parser.add_argument("--recognizer", action="store_true", help="export the fine-tuned recogniser instead")
    parser.add_argument("--float16", action="store_true", help="with --recognizer: float16 tensors (half the size)")
    args = parser.parse_args(argv)
    if args.float16 and not args.recognizer:
        raise ConfigError("--float16 is for --recognizer (a hallucinator file keeps its float32 weights)")
    if args.recognizer:
        print(export_recognizer(args.run_dir, args.checkpoint, args.out, float16=args.float16))
    else:
        print(export_run(args.run_dir, args.checkpoint, args.out))


if __name__ == "__main__":
    main()
