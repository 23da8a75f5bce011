"""A recogniser fine-tuned during training (SICNN, C-Face, FH-GAN) can be exported and evaluated in
place of dlib's shipped weights; the embedder's name and fingerprint then say which one was used."""

import numpy as np
import pytest
import torch

from fhsdk.embed import Embedder
from fhsdk.errors import ConfigError, WeightsError
from fhsdk.models import create_model
from train.__main__ import main as train_main
from train.config import load_config
from train.export_weights import export_recognizer
from train.recognizer import build_recognizer
from train.testing import TINY, TINY_COMMON, make_center_crop_cache


@pytest.fixture(scope="module")
def shipped_state():
    return create_model("dlib_resnet_v1", pretrained=True).state_dict()


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(2, 150, 150, 3), dtype=np.uint8)


def test_finetuned_weights_replace_the_shipped_ones(tmp_path, shipped_state, faces):
    shipped = Embedder()
    same = tmp_path / "same.pt"
    torch.save(shipped_state, same)
    assert Embedder(weights=same).fingerprint == shipped.fingerprint  # the fingerprint follows the weights
    moved = {k: v.clone() for k, v in shipped_state.items()}
    moved["fc.weight"] += 0.01 * torch.randn_like(moved["fc.weight"], generator=torch.Generator().manual_seed(0))
    moved_path = tmp_path / "recognizer_finetuned.pt"
    torch.save(moved, moved_path)
    finetuned = Embedder(weights=moved_path)
    assert finetuned.fingerprint != shipped.fingerprint and "fine-tuned" in finetuned.name
    assert not np.allclose(
        finetuned.embed_preprocessed(finetuned.preprocess(faces)),
        shipped.embed_preprocessed(shipped.preprocess(faces)),
        atol=1e-4,
    )


@pytest.mark.parametrize("content", [b"", b"not a state dict", None])
def test_bad_recognizer_weights_are_refused(tmp_path, content):
    path = tmp_path / "recognizer.pt"
    if content is None:
        torch.save({"conv.weight": torch.zeros(3)}, path)  # a state dict of some other network
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match="export_weights"):
        Embedder(weights=path)
    with pytest.raises(WeightsError, match="not found"):
        Embedder(weights=tmp_path / "missing.pt")


def test_a_domain_integrated_run_exports_the_recognizer_it_trained(celeba_dir, tmp_path):
    cache = make_center_crop_cache(celeba_dir, tmp_path / "faces.npz", identities=4, per_identity=4)
    out = tmp_path / "run"
    overrides = (
        TINY_COMMON + TINY["sicnn"] + ["train.steps=2", "optim.recognizer.lr=1.0e-2", "deploy.recognizer=finetuned"]
    )
    argv = ["sicnn", "--out", str(out), "--cache", str(cache), "--no-progress", "--threads", "1", "--no-eval"]
    for override in overrides:
        argv += ["--set", override]
    train_main(argv)
    written = torch.load(out / "recognizer_finetuned.pt", weights_only=True)  # written by the run itself
    exported = torch.load(export_recognizer(out, out=tmp_path / "again.pt"), weights_only=True)
    assert written.keys() == exported.keys() and all(torch.equal(written[k], exported[k]) for k in written)
    fresh = build_recognizer(load_config(out / "config.yaml")["recognizer"]).backbone
    fresh.load_state_dict(written)  # the backbone alone (no "backbone." prefix), loadable into a fresh network
    # float16 for packaging: the same tensors rounded, loadable into the float32 network
    half = torch.load(export_recognizer(out, out=tmp_path / "half.pt", float16=True), weights_only=True)
    assert all(torch.equal(half[k], written[k].half() if written[k].is_floating_point() else written[k]) for k in half)
    fresh.load_state_dict(half)
    assert all(p.dtype == torch.float32 for p in fresh.parameters())
    with pytest.raises(ConfigError, match="no checkpoint"):
        export_recognizer(tmp_path / "nowhere")
