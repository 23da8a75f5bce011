"""Run a training config: seeding, data, the step loop, CSV log, checkpoints and exact resume.

Run folder layout:
    config.yaml                # the resolved config (base + preset + overrides + seed)
    log.csv                    # one row per step: step, the procedure's losses, sec
    checkpoints/step_NNNNNNN.pt, checkpoints/last.pt
    generator.pt               # the latest generator as an fhsdk hallucinator file (train/export_weights.py)
    recognizer_finetuned.pt    # only when `deploy.recognizer: finetuned`
A checkpoint holds every network, optimiser and scheduler state, the procedure's RNG, the global
RNG states and the step; the data order is a function of (seed, step). Resuming therefore continues
the same trajectory as an uninterrupted run.
"""

from __future__ import annotations

import copy
import csv
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from fhsdk.errors import ConfigError
from fhsdk.files import atomic_path
from train.checkpoint_io import atomic_save, load_checkpoint
from train.config import dump_config, same_run
from train.data import EpochBatchSampler, FaceCropDataset, build_cache, config_cache_path, split_cache
from train.export_weights import save_hallucinator
from train.procedures import PROCEDURES, Procedure


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_training_set(data_cfg: dict, seed: int) -> FaceCropDataset:
    """The training split of the face cache (built from CelebA on first use when `build_cache` is set)."""
    hr_side = data_cfg["hr_side"]
    cache_path = config_cache_path(data_cfg)
    if not cache_path.is_file():
        if not data_cfg["celeba_dir"]:
            raise ConfigError(f"face cache {cache_path} is missing and data.celeba_dir is not set to build it")
        build_cache(data_cfg["celeba_dir"], cache_path, hr_side, device=data_cfg["detect_device"])
    cache, train, _ = split_cache(data_cfg)
    if cache["images"].shape[1] != hr_side:
        raise ConfigError(f"{cache_path} holds {cache['images'].shape[1]} px faces, the config asks for {hr_side}")
    max_identities = data_cfg["max_identities"]
    if max_identities:  # small presets: the first people of the (fixed) training split
        keep = set(np.unique(cache["labels"][train])[:max_identities].tolist())
        train = np.array([i for i in train if cache["labels"][i] in keep])
    return FaceCropDataset(cache, train)


class CSVLog:
    """Append-only loss log; on resume, rows past the checkpoint's step are dropped first."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None):
        self.path, self.columns = path, ["step", *columns, "sec"]
        if resume_step is not None and path.is_file():
            with open(path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, self.columns)
                writer.writeheader()
                writer.writerows(rows)
        else:
            with open(path, "w", newline="") as handle:
                csv.DictWriter(handle, self.columns).writeheader()
        self.handle = open(path, "a", newline="")
        self.writer = csv.DictWriter(self.handle, self.columns, extrasaction="ignore")

    def write(self, step: int, losses: dict[str, float], seconds: float) -> None:
        self.writer.writerow({"step": step, **{k: f"{v:.8g}" for k, v in losses.items()}, "sec": f"{seconds:.4f}"})
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def read_log(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def save_checkpoint(procedure: Procedure, cfg: dict, step: int, out_dir: Path) -> Path:
    folder = out_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.pt"
    atomic_save({"step": step, "procedure": procedure.state_dict(), "rng": rng_states(), "config": cfg}, path)
    with atomic_path(folder / "last.pt") as tmp:  # never a half-written last.pt
        shutil.copyfile(path, tmp)
    keep, every = cfg["train"]["keep_checkpoints"], cfg["train"].get("keep_every")
    for old in sorted(folder.glob("step_*.pt"))[:-keep]:
        if not (every and int(old.stem.split("_")[1]) % every == 0):
            old.unlink()
    save_hallucinator(cfg, procedure.generator.state_dict(), step, out_dir / "generator.pt")
    # A fine-tuned recogniser is a training aid: exported for deployment only when the config says so.
    if cfg["deploy"]["recognizer"] == "finetuned" and "recognizer" in procedure.networks:
        atomic_save(procedure.networks["recognizer"].backbone.state_dict(), out_dir / "recognizer_finetuned.pt")
    return path


def train(
    cfg: dict,
    out_dir: str | Path,
    seed: int = 0,
    resume: bool = False,
    device: str | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict:
    """Run (or resume) a training run; returns {"step", "out_dir", "losses"} of the last step.

    stop_after: end after this many steps of the run (as if interrupted); the config's train.steps is
    the run's length.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = {**copy.deepcopy(cfg), "seed": seed}
    device = device or cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    checkpoint_path = out_dir / "checkpoints" / "last.pt"
    checkpoint = None
    if resume:
        if not checkpoint_path.is_file():
            raise ConfigError(f"--resume: no checkpoint at {checkpoint_path}; start the run without --resume")
        checkpoint = load_checkpoint(checkpoint_path)
        if not same_run(checkpoint["config"], cfg):
            raise ConfigError(
                f"--resume: the config differs from the one {out_dir} was trained with (only train.steps, threads and keep_every may "
                "change); resume with its config.yaml, or start a new run folder"
            )
    elif checkpoint_path.is_file():
        raise ConfigError(f"{out_dir} already holds a run: pass --resume to continue it, or choose another --out")
    dump_config(cfg, out_dir / "config.yaml")

    threads = torch.get_num_threads()
    if cfg["train"].get("threads"):
        torch.set_num_threads(cfg["train"]["threads"])
    try:
        return _run(cfg, out_dir, seed, device, checkpoint, stop_after, progress)
    finally:
        torch.set_num_threads(threads)


def _run(cfg, out_dir, seed, device, checkpoint, stop_after, progress) -> dict:
    seed_everything(seed)
    train_set = load_training_set(cfg["data"], seed)
    procedure = PROCEDURES[cfg["method"]](cfg, train_set, device, seed, out_dir)
    step = 0
    if checkpoint is not None:
        procedure.load_state_dict(checkpoint["procedure"])
        set_rng_states(checkpoint["rng"])
        step = checkpoint["step"]
    elif cfg["train"].get("init_generator"):
        # Fine-tuning: start the generator from an exported hallucinator (python -m train.export_weights).
        record = torch.load(cfg["train"]["init_generator"], map_location="cpu", weights_only=True)
        procedure.generator.load_state_dict(record["state_dict"])

    train_cfg = cfg["train"]
    total, every = train_cfg["steps"], train_cfg["checkpoint_every"]
    end = total if stop_after is None else min(total, step + stop_after)
    sampler = EpochBatchSampler(len(train_set), cfg["data"]["batch_size"], seed, start_batch=step)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg["data"]["num_workers"])
    log = CSVLog(out_dir / "log.csv", list(procedure.loss_names), step if checkpoint is not None else None)
    losses: dict[str, float] = {}
    bar = tqdm(total=total, initial=step, desc=f"{cfg['method']}", disable=not progress, dynamic_ncols=True)
    try:
        for batch in loader:
            if step >= end:
                break
            started = time.perf_counter()
            losses = procedure.train_step(batch, step)
            procedure.end_step()
            step += 1
            log.write(step, losses, time.perf_counter() - started)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in list(losses.items())[:3]})
            if step % every == 0 or step == total:
                save_checkpoint(procedure, cfg, step, out_dir)
    finally:
        bar.close()
        log.close()
    if step < total and step % every != 0:  # interrupted between checkpoints on purpose: save where we are
        save_checkpoint(procedure, cfg, step, out_dir)
    return {"step": step, "out_dir": str(out_dir), "losses": losses, "procedure": procedure}
