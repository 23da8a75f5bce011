"""The end-to-end LFW protocol: real LFW images shrunk as whole frames, run through Pipeline."""

import shutil

import numpy as np
import pytest

from fhsdk.align import region_side_px
from fhsdk.errors import ConfigError
from fhsdk.eval.end_to_end import FRAME_SIDES, evaluate_lfw_pipeline, make_pipeline, query_frame
from fhsdk.eval.harness import EvalConfig, read_image

PEOPLE = ["Aaron_Peirsol", "Abdullah_Gul", "Adrien_Brody", "Alejandro_Toledo", "Al_Gore", "Ali_Naimi"]


@pytest.fixture(scope="module")
def mini_lfw(lfw_dir, tmp_path_factory):
    """A 2-fold LFW of 6 people (first two images each): 2 matched + 2 mismatched pairs per fold."""
    root = tmp_path_factory.mktemp("lfw")
    for person in PEOPLE:
        for number in (1, 2):
            source = lfw_dir / "images" / person / f"{person}_{number:04d}.jpg"
            if not source.is_file():
                pytest.skip(f"{source} missing from the LFW folder")
            (root / "images" / person).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / "images" / person / source.name)
    # The last query is a blank frame: the pipeline cannot find a face in it.
    blank = root / "images" / PEOPLE[5] / f"{PEOPLE[5]}_0002.jpg"
    import cv2

    cv2.imwrite(str(blank), np.full((250, 250, 3), 128, np.uint8))
    p = PEOPLE
    lines = [
        "2\t2",
        f"{p[0]}\t1\t2",
        f"{p[1]}\t1\t2",
        f"{p[0]}\t1\t{p[2]}\t2",
        f"{p[1]}\t1\t{p[3]}\t2",
        f"{p[2]}\t1\t2",
        f"{p[5]}\t1\t2",
        f"{p[3]}\t2\t{p[4]}\t2",
        f"{p[3]}\t1\t{p[5]}\t2",
    ]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_query_frame_puts_a_face_of_the_asked_side_in_a_larger_frame(lfw_dir):
    from fhsdk.detect.mtcnn import MTCNN

    detector = MTCNN(min_face_size=12)
    image = read_image(lfw_dir / "images" / "Al_Gore" / "Al_Gore_0001.jpg")
    hr = detector.detect([image])[0]
    landmarks = hr.landmarks[np.argmax(hr.scores)][None]
    for side in (16, 24):
        frame = query_frame(image, landmarks, side)
        assert frame.shape == (FRAME_SIDES * side, FRAME_SIDES * side, 3)
        assert (frame[0] == 128).all() and (frame[-1] == 128).all()  # grey margin around the shrunk image
        found = detector.detect([frame])[0]
        assert len(found) >= 1
        measured = region_side_px(found.landmarks[np.argmax(found.scores)][None])[0]
        assert side * 0.8 < measured < side * 1.25  # the detector sees a face of about that side


def test_pipeline_protocol_counts_detection_misses(mini_lfw, tmp_path, monkeypatch):
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    config = EvalConfig(data=mini_lfw, sizes=(24,), identification=False, folds=2)
    result = evaluate_lfw_pipeline(config, make_pipeline("bicubic", gate_px=0.0), "mtcnn")
    hr, lr = result.rows
    assert result.meta["protocol"] == "pipeline" and result.meta["detector"] == "mtcnn"
    assert result.meta["hallucinator"] == "none (gate_px=0)" and result.meta["pairs"] == 8
    assert hr["lr_side"] is None and "pairs_found" not in hr
    # 6 distinct query images; the blank one is missed, and with it the 2 pairs that use it.
    assert lr["queries_found"] == pytest.approx(5 / 6) and lr["pairs_found"] == pytest.approx(6 / 8)
    assert lr["accuracy"] <= lr["pairs_found"] + 1e-9  # a miss is never a right decision
    assert lr["hallucinated"] == 0.0 and 19 < lr["detected_side_median"] < 30

    gated = evaluate_lfw_pipeline(config, make_pipeline("bicubic", gate_px=32.0), "mtcnn").rows[1]
    assert gated["hallucinated"] == 1.0 and gated["queries_found"] == pytest.approx(5 / 6)


def test_aligned_protocol_embeds_only_the_restored_queries_with_the_lr_recognizer(mini_lfw, tmp_path, monkeypatch):
    import torch

    from fhsdk.embed import Embedder
    from fhsdk.eval.harness import evaluate_lfw
    from fhsdk.hallucinate import create_hallucinator

    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    embedder = Embedder()
    state = {name: tensor.clone() for name, tensor in embedder.network.state_dict().items()}
    state["fc.weight"] += 0.05 * torch.randn_like(state["fc.weight"], generator=torch.Generator().manual_seed(0))
    torch.save(state, tmp_path / "moved.pt")
    moved = Embedder(weights=tmp_path / "moved.pt")
    config = EvalConfig(data=mini_lfw, sizes=(16,), identification=False, folds=2)
    plain = evaluate_lfw(config, create_hallucinator("bicubic"), embedder)
    adapted = evaluate_lfw(config, create_hallucinator("bicubic"), embedder, lr_embedder=moved)
    assert plain.meta["lr_recognizer"] == "dlib_resnet_v1" and "moved.pt" in adapted.meta["lr_recognizer"]
    assert adapted.rows[0]["identity_cosine"] == pytest.approx(
        plain.rows[0]["identity_cosine"]
    )  # HR queries: the original
    assert adapted.rows[1]["identity_cosine"] != pytest.approx(
        plain.rows[1]["identity_cosine"], abs=1e-4
    )  # LR: the moved one


def test_aligned_protocol_gate_sends_large_faces_down_the_plain_path(mini_lfw, tmp_path, monkeypatch):
    """With gate_px, sides at or above it are measured the way Pipeline treats them: bicubic, original recogniser."""
    from fhsdk.embed import Embedder
    from fhsdk.eval.harness import evaluate_lfw
    from fhsdk.hallucinate import create_hallucinator

    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path))
    embedder, hallucinator = Embedder(), create_hallucinator("default")
    config = EvalConfig(data=mini_lfw, sizes=(12, 16), identification=False, folds=2)
    plain = evaluate_lfw(config, create_hallucinator("bicubic"), embedder)
    ungated = evaluate_lfw(config, hallucinator, embedder)
    config.gate_px = 16
    gated = evaluate_lfw(config, hallucinator, embedder)
    assert gated.meta["gate_px"] == 16 and ungated.meta["gate_px"] is None
    assert [row.get("hallucinated") for row in gated.rows] == [None, 1.0, 0.0]
    assert gated.rows[1]["identity_cosine"] == pytest.approx(ungated.rows[1]["identity_cosine"])  # 12 px: hallucinated
    assert gated.rows[2]["identity_cosine"] == pytest.approx(plain.rows[2]["identity_cosine"])  # 16 px: bicubic
    assert gated.rows[2]["identity_cosine"] != pytest.approx(ungated.rows[2]["identity_cosine"], abs=1e-4)
    assert "bicubic" in gated.rows[2]["query"]
    config.gate_px = -1
    with pytest.raises(ConfigError, match="gate_px"):
        evaluate_lfw(config, hallucinator, embedder)
