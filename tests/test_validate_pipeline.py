"""The held-out-people gate end to end (train.validate_pipeline.evaluate), on a few real LFW people."""

import numpy as np
import pytest

from fhsdk.align import HR_SIDE
from fhsdk.eval.end_to_end import make_pipeline
from fhsdk.eval.harness import aligned_crops, detect_landmarks, read_image
from train.validate_pipeline import evaluate

PEOPLE = ["Al_Gore", "Adrien_Brody", "Alejandro_Toledo"]


@pytest.fixture
def held_out(lfw_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))  # the landmark cache
    names = [f"{p}/{p}_{n:04d}.jpg" for p in PEOPLE for n in (1, 2, 3)]
    if not all((lfw_dir / "images" / name).is_file() for name in names):
        pytest.skip("these LFW people are missing from the LFW folder")
    found = detect_landmarks(lfw_dir, names)
    return {
        "images": [read_image(lfw_dir / "images" / name) for name in names],
        "landmarks": found.landmarks,
        "labels": np.repeat(np.arange(len(PEOPLE)), 3),
        "gallery_rows": np.arange(0, 9, 3),
        "hr_crops": aligned_crops(lfw_dir, names, found.landmarks, (HR_SIDE,), "align")[HR_SIDE],
    }


def test_rows_report_rank1_and_where_the_threshold_sits(held_out):
    pipeline = make_pipeline("bicubic", gate_px=0.0, backend="onnxruntime")
    (row,) = evaluate(held_out, pipeline, [24])
    assert row["queries"] == 6 and row["people"] == 3 and row["found"] == 1.0
    assert 0.0 <= row["tar_at_far_1%_found"] <= 1.0 and 0.0 <= row["far_at_threshold_found"] <= 1.0
    pipeline.threshold = -1.0  # every stranger passes: the FAR column must say so
    (lenient,) = evaluate(held_out, pipeline, [24])
    assert lenient["far_at_threshold_found"] == 1.0
    assert lenient["rank1"] == row["rank1"] and lenient["tar_at_far_1%_found"] == row["tar_at_far_1%_found"]
