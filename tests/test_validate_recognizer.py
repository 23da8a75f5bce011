"""The held-out-people check that decides whether an adapted recogniser may be packaged."""

import torch

from fhsdk.models import create_model
from train.config import dump_config, load_config
from train.testing import make_center_crop_cache
from train.validate_recognizer import markdown, validate


def test_validation_on_held_out_people_compares_both_recognisers(celeba_dir, tmp_path):
    cache = make_center_crop_cache(celeba_dir, tmp_path / "faces.npz", identities=6, per_identity=3)
    cfg = load_config("distill", "cpu_small", [f"data.cache={cache}", "data.val_fraction=0.5"])
    dump_config({**cfg, "seed": 0}, tmp_path / "config.yaml")
    # The shipped weights as the "adapted" recogniser: both columns must then agree exactly.
    torch.save(create_model("dlib_resnet_v1", pretrained=True).state_dict(), tmp_path / "recognizer_finetuned.pt")
    rows = validate(tmp_path, sizes=(12,), max_people=None, hallucinator="bicubic")
    assert [(r["query"], r["recognizer"]) for r in rows] == [
        ("HR", "original"),
        ("HR", "adapted"),
        ("HR", "original+adapted"),
        ("bicubic 12px", "original"),
        ("bicubic 12px", "adapted"),
        ("bicubic 12px", "original+adapted"),
    ]
    assert rows[0]["people"] == 3 and rows[0]["faces"] == 9  # half of the six people, three faces each
    assert rows[0]["identity_cosine"] == 1.0 or abs(rows[0]["identity_cosine"] - 1.0) < 1e-6
    for original, *others in (rows[:3], rows[3:]):  # identical weights: the ensemble of two equals each
        for other in others:
            assert other["rank1"] == original["rank1"]
            assert abs(other["identity_cosine"] - original["identity_cosine"]) < 1e-5
            assert abs(other["tar_at_far_1%"] - original["tar_at_far_1%"]) < 1e-9
    assert rows[0]["far_at_default_threshold"] <= rows[3]["far_at_default_threshold"]  # tiny faces look alike
    assert 0.0 <= rows[3]["tar_at_far_1%"] <= 1.0
    assert rows[3]["identity_cosine"] < 0.99  # 12 px queries are far from their HR faces
    assert "| bicubic 12px | adapted |" in markdown(rows)
