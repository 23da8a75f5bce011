import json

import cv2
import numpy as np
import pytest

from fhsdk.cli import main
from fhsdk.demo import astronaut_bgr


def test_demo_writes_video_events_and_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--frames", "4", "--hallucinator", "bicubic"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["hallucination_on"]["frames_with_face"] == 4
    assert (tmp_path / "demo_hallucination_on.mp4").stat().st_size > 1000
    events = [json.loads(line) for line in (tmp_path / "events_hallucination_on.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "first_seen"
    assert "named in" in capsys.readouterr().out


def test_demo_names_the_tiny_face_only_with_hallucination(tmp_path):
    """The README's main job shows what the product is for: the default model names a 16 px face that the
    recogniser alone cannot (docs/RESULTS.md has the sweep over face sizes and cameras behind this)."""
    from fhsdk.demo import run_demo

    summary = run_demo(tmp_path, frames=20)
    assert summary["hallucination_on"]["frames_with_face"] == summary["hallucination_off"]["frames_with_face"] == 20
    assert summary["hallucination_on"]["frames_named"] >= 8
    assert summary["hallucination_off"]["frames_named"] == 0


def test_demo_camera_option_is_checked(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--camera", "0.5,2"])
    assert "BLUR,NOISE,JPEG" in capsys.readouterr().err


def test_enroll_folder_then_run_video(tmp_path, capsys):
    people = tmp_path / "people"
    people.mkdir()
    face = astronaut_bgr()
    cv2.imwrite(str(people / "eileen.jpg"), face)
    gallery = tmp_path / "g.npz"
    assert main(["enroll", str(people), "--gallery", str(gallery), "--hallucinator", "bicubic"]) == 0
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for i in range(3):
        writer.write(cv2.resize(np.roll(face, 10 * i, axis=1), (256, 256)))
    writer.release()
    out, events = tmp_path / "out.avi", tmp_path / "events.jsonl"
    capsys.readouterr()
    assert main(["run", str(video), "--gallery", str(gallery), "--out", str(out), "--events", str(events),
                 "--hallucinator", "bicubic", "--batch-frames", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["frames"], summary["frames_with_face"], summary["frames_named"]) == (3, 3, 3)
    assert summary["fps"] > 0
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds[:2] == ["first_seen", "identified"]
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 3


def test_user_errors_exit_with_message(tmp_path, capsys):
    assert main(["eval", "lfw", "--data", str(tmp_path)]) == 2
    assert "no LFW found" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.mp4"), "--gallery", str(tmp_path / "g.npz"), "--hallucinator", "bicubic"]) == 2
    assert "no gallery file" in capsys.readouterr().err


def test_bench_runs_a_benchmark_script(tmp_path, capsys):
    out = tmp_path / "k.json"
    assert main(["bench", "kernels", "--quick", "--cases", "topk", "--reps", "1", "--json", str(out)]) == 0
    assert out.is_file() and "cosine_topk" in capsys.readouterr().out
