"""Short real runs of every method on tiny real data (CelebA centre crops, small networks).

Each method trains a few dozen steps on one fixed batch and must lower its losses; outputs must have
the contract's shape and range. The networks are shrunk (train.testing.TINY) and the recogniser is the
small conv net, so each test takes seconds; the cpu_small presets run the same code at a useful size.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from train.config import CONFIG_DIR, load_config
from train.data import FaceCropDataset, load_cache
from train.procedures import PROCEDURES
from train.runner import read_log, seed_everything
from train.testing import TINY, TINY_COMMON, make_center_crop_cache, tiny_config

METHODS = ["lai", "sicnn", "cface", "fhgan", "ipfsrgan"]  # the hallucinators
RECOGNIZER_METHODS = ["distill"]  # procedures that adapt the recogniser to a packaged hallucinator
FINETUNES = ["pipeline_finetune"]  # configs of an existing method, started from packaged weights


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks: one thread is fastest, and it does not fight the other processes for the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache_path(celeba_dir, tmp_path_factory):
    return make_center_crop_cache(
        celeba_dir, tmp_path_factory.mktemp("cache") / "faces.npz", identities=4, per_identity=4
    )


def test_every_method_has_a_config_with_both_presets():
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted(METHODS + RECOGNIZER_METHODS + FINETUNES)
    for finetune in FINETUNES:
        assert load_config(finetune, "cpu_small")["method"] in PROCEDURES
    for method in METHODS:
        for preset in ("cpu_small", "gpu_full"):
            cfg = load_config(method, preset)
            assert cfg["method"] == method and cfg["method"] in PROCEDURES
            generator = cfg["generator"]
            assert generator["lr_side"] * generator["scale"] == cfg["data"]["hr_side"] == 128
            assert cfg["deploy"]["recognizer"] == "original"
    assert load_config("lai", "cpu_small")["loss"]["identity_weight"] == 0.5
    assert load_config("lai", "cpu_small")["degradation"]["factors"] == [4, 8, 16]
    assert load_config("sicnn", "gpu_full")["loss"]["identity_weight"] == 8.0
    assert load_config("sicnn", "gpu_full")["head"] == {"name": "asoftmax", "m": 4}
    assert load_config("fhgan", "gpu_full")["head"] == {"name": "arcface", "s": 64.0, "m": 0.5}
    assert load_config("fhgan", "gpu_full")["loss"]["gp_weight"] == 10.0
    assert load_config("fhgan", "gpu_full")["discriminator"]["norm"] != "batch"
    assert load_config("cface", "gpu_full")["loss"]["compare_k"] == 3


def test_ablation_configs_start_from_a_packaged_generator_they_can_load():
    """The fine-tunes in train/configs/ablations name their starting weights; a renamed packaged
    model must not leave them pointing at a file that no longer is what they say."""
    from fhsdk.hallucinate import PACKAGED
    from train.procedures.base import build_generator

    configs = sorted((CONFIG_DIR / "ablations").glob("*.yaml"))
    assert {p.stem for p in configs} >= {"sicnn_edsr", "cface_edsr"}
    for path in configs:
        cfg = load_config(path)
        assert cfg["method"] in PROCEDURES and cfg["deploy"]["recognizer"] == "original"
        start = (CONFIG_DIR.parents[1] / cfg["train"]["init_generator"]).resolve()
        assert start == PACKAGED["lai"].resolve(), (path.name, start)
        generator, _ = build_generator(cfg["generator"], cfg["data"]["hr_side"])
        generator.load_state_dict(torch.load(start, weights_only=True)["state_dict"])  # same architecture


def _overfit(method, cache_path, tmp_path, steps, extra=()):
    """Train `steps` iterations on one fixed batch; returns (procedure, list of loss dicts)."""
    extra = ["optim.generator.lr=1.0e-3", *extra]  # overfitting one batch: a larger step than real training
    cfg = {**tiny_config(method, cache_path, steps=steps, extra=extra), "seed": 0}
    seed_everything(0)
    train_set = FaceCropDataset(load_cache(cache_path))
    procedure = PROCEDURES[method](cfg, train_set, "cpu", 0, tmp_path)
    indices = torch.tensor([0, 4, 8, 12])  # four people
    batch = {"hr": train_set.hr(indices), "label": train_set.labels[indices], "index": indices}
    logs = []
    for step in range(steps):
        logs.append(procedure.train_step(batch, step))
        procedure.end_step()
    return procedure, logs


def _mean(logs, key, part):
    values = [log[key] for log in logs if key in log]
    n = max(3, len(values) // 5)
    return float(np.mean(values[:n] if part == "first" else values[-n:]))


def _check_output(procedure):
    lr = torch.rand(2, 3, 32, 32)
    procedure.generator.eval()
    with torch.no_grad():
        sr = procedure.generator(lr)
    assert sr.shape == (2, 3, 128, 128) and torch.isfinite(sr).all()
    assert -0.5 < sr.min() and sr.max() < 1.5  # roughly [0, 1]; clamped only at deployment


@pytest.mark.parametrize(
    "method,keys,extra",
    [
        ("lai", ["total", "pixel"], []),
        ("sicnn", ["total", "pixel", "recognizer"], ["optim.generator.lr=3.0e-3", "optim.recognizer.lr=1.0e-3"]),
        ("fhgan", ["pixel", "recognizer"], ["optim.recognizer.lr=1.0e-3"]),
        ("ipfsrgan", ["pixel", "perceptual"], ["loss.pixel_only_steps=10"]),
    ],
)
def test_losses_fall_on_a_fixed_batch(method, keys, extra, cache_path, tmp_path):
    procedure, logs = _overfit(method, cache_path, tmp_path, steps=30, extra=extra)
    for key in keys:
        assert _mean(logs, key, "last") < 0.9 * _mean(logs, key, "first"), (
            key,
            [round(log[key], 4) for log in logs if key in log],
        )
    _check_output(procedure)


def test_distill_config_adapts_a_copy_of_the_recognizer_to_the_default_hallucinator():
    from fhsdk.hallucinate import PACKAGED
    from train.procedures.base import build_generator

    for preset in ("cpu_small", "gpu_full"):
        cfg = load_config("distill", preset)
        assert cfg["deploy"]["recognizer"] == "finetuned" and cfg["recognizer"]["pretrained"]
        assert len(cfg["data"]["celeba_dir"]) == 2  # celeba_subset and celeba_extra
        sides = sorted(round(128 / f) for f in cfg["degradation"]["factors"])
        assert sides[0] == 8 and sides[-1] == 32
    start = (CONFIG_DIR.parents[1] / cfg["train"]["init_generator"]).resolve()
    assert start == PACKAGED["default"].resolve()
    generator, _ = build_generator(cfg["generator"], cfg["data"]["hr_side"])
    generator.load_state_dict(torch.load(start, weights_only=True)["state_dict"])  # same architecture


def test_distill_moves_the_student_toward_the_teacher_and_nothing_else(cache_path, tmp_path):
    extra = ["optim.recognizer.lr=1.0e-3", "distill.mix={hallucinated: 0.5, bicubic: 0.5, hr: 0.0}"]
    procedure, _ = _overfit("distill", cache_path, tmp_path, steps=0, extra=extra)
    teacher = {k: v.clone() for k, v in procedure.teacher.state_dict().items()}
    generator = {k: v.clone() for k, v in procedure.generator.state_dict().items()}
    # The student starts as a copy of the teacher.
    assert all(torch.equal(v, procedure.recognizer.state_dict()[k]) for k, v in teacher.items())
    procedure, logs = _overfit("distill", cache_path, tmp_path, steps=30, extra=extra)
    # (The contrastive term has known-value tests in test_losses.py; a random tiny teacher barely separates
    # people, so it need not fall here.)
    assert _mean(logs, "distill", "last") < 0.7 * _mean(logs, "distill", "first"), [
        round(log["distill"], 4) for log in logs
    ]
    assert all(np.isfinite(log["contrastive"]) for log in logs)
    assert all("distill_hr" not in log and "distill_lr" in log for log in logs)  # no HR inputs in this mix
    assert all(torch.equal(v, procedure.teacher.state_dict()[k]) for k, v in teacher.items())
    assert all(torch.equal(v, procedure.generator.state_dict()[k]) for k, v in generator.items())
    assert not all(torch.equal(v, procedure.recognizer.state_dict()[k]) for k, v in teacher.items())
    assert set(procedure.optimizers) == {"recognizer"}


def test_sicnn_frozen_recognizer_ablation(cache_path, tmp_path):
    """domain_integrated: false trains the generator through the pretrained recogniser, left untouched."""
    extra = ["loss.domain_integrated=false", "optim.generator.lr=3.0e-3"]
    procedure, logs = _overfit("sicnn", cache_path, tmp_path, steps=1, extra=extra)
    before = {k: v.clone() for k, v in procedure.recognizer.state_dict().items()}
    procedure, logs = _overfit("sicnn", cache_path, tmp_path, steps=30, extra=extra)
    assert "recognizer" not in procedure.optimizers and not hasattr(procedure, "head")
    assert all(np.isnan(log["recognizer"]) for log in logs)
    assert _mean(logs, "pixel", "last") < 0.9 * _mean(logs, "pixel", "first")
    after = procedure.recognizer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # same pretrained start, never updated
    _check_output(procedure)


def test_cface_stages(cache_path, tmp_path):
    """C-Face: GAN stage lowers the pixel loss, the set is super-resolved once, the recogniser then learns
    HR u SR, and the joint stage runs both updates."""
    extra = ["stages={gan: 20, recognizer: 15, joint: 5}", "optim.recognizer.lr=1.0e-3"]
    procedure, logs = _overfit("cface", cache_path, tmp_path, steps=40, extra=extra)
    assert [log["stage"] for log in logs] == [1.0] * 20 + [3.0] * 15 + [4.0] * 5
    gan, recognizer = logs[:20], logs[20:35]
    assert _mean(gan, "pixel", "last") < 0.9 * _mean(gan, "pixel", "first")
    assert _mean(recognizer, "recognizer", "last") < 0.9 * _mean(recognizer, "recognizer", "first")
    assert all({"pixel", "cface", "discriminator", "recognizer"} <= set(log) for log in logs[35:])
    sr_set = np.load(tmp_path / "sr_set.npz")["images"]
    assert sr_set.shape == (16, 128, 128, 3) and sr_set.dtype == np.uint8
    # Compare faces: 3 per face, same person, never itself (every person has 4 images).
    labels = procedure.train_set.labels
    assert procedure.compare.shape == (16, 3)
    assert (labels[procedure.compare] == labels[:, None]).all()
    assert not (procedure.compare == torch.arange(16)[:, None]).any()
    _check_output(procedure)


def _lai_argv(out, cache_path, lfw, overrides) -> list[str]:
    """`python -m train` arguments of a tiny one-thread `lai` run (no discriminator) on the test cache."""
    overrides = [o for o in TINY_COMMON if not o.startswith("discriminator.")] + TINY["lai"] + overrides
    argv = ["lai", "--out", str(out), "--cache", str(cache_path), "--no-progress", "--threads", "1", "--lfw", str(lfw)]
    return argv + [arg for override in overrides for arg in ("--set", override)]


def test_cli_run_writes_config_log_and_checkpoints(cache_path, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "train"]
    cmd += _lai_argv(out, cache_path, tmp_path / "no_lfw_here", ["train.steps=4", "train.checkpoint_every=2"])
    cmd += ["--seed", "3"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LFW evaluation skipped: no pairs.txt" in result.stdout  # said, not silently dropped
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["seed"] == 3 and saved["method"] == "lai" and saved["train"]["steps"] == 4
    assert load_config(out / "config.yaml")["generator"] == saved["generator"]  # the copy reloads as is
    rows = read_log(out / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4] and {"total", "pixel", "identity", "sec"} <= set(rows[0])
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "checkpoints" / "step_0000004.pt").is_file()
    exported = torch.load(out / "generator.pt", weights_only=True)  # plain data only
    assert exported["arch"] == "edsr" and exported["native_side"] == 32 and exported["hr_side"] == 128
    assert exported["step"] == 4 and exported["name"] == "lai-cpu_small-seed3"
    # The deployment side loads it and maps LR crops of any side to 128 px crops.
    from fhsdk.hallucinate import NetworkHallucinator

    hallucinator = NetworkHallucinator.from_file(out / "generator.pt")
    crops = load_cache(cache_path)["images"][:2, ::8, ::8, ::-1].copy()  # 16 px BGR crops
    assert hallucinator(crops).shape == (2, 128, 128, 3)
    # A second start into the same folder without --resume is refused with a clear message.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "--resume" in again.stderr


def _mini_lfw(lfw_dir, root, per_fold=5):
    """Two folds of the real pairs file (per_fold matched + per_fold mismatched each), real images."""
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()[1:]
    kept = [
        line
        for fold in range(2)
        for line in lines[fold * 600 : fold * 600 + 300][:per_fold]
        + lines[fold * 600 + 300 : fold * 600 + 600][:per_fold]
    ]
    root.mkdir()
    (root / "pairs.txt").write_text(f"2\t{per_fold}\n" + "\n".join(kept) + "\n")
    (root / "images").symlink_to((lfw_dir / "images").resolve())
    return root


def test_run_ends_with_the_lfw_harness(cache_path, tmp_path, lfw_dir):
    """A finished run evaluates its exported generator with the foundation harness (here on 20 real
    LFW pairs, to stay quick) and writes the table into the run folder."""
    from train.__main__ import main as train_main

    out = tmp_path / "run"
    train_main(
        _lai_argv(out, cache_path, _mini_lfw(lfw_dir, tmp_path / "lfw"), ["train.steps=2"]) + ["--eval-sizes", "16"]
    )
    table = (out / "lfw" / "lfw_generator_bicubic.md").read_text()
    assert "| LR 16px | 16 |" in table and "| HR |" in table
