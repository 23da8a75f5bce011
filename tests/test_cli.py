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


def _run(video, gallery, *options) -> int:
    """`fhsdk run VIDEO --gallery GALLERY --hallucinator bicubic OPTIONS...`: its exit status."""
    return main(["run", str(video), "--gallery", str(gallery), "--hallucinator", "bicubic", *map(str, options)])


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
    assert _run(video, gallery, "--out", out, "--events", events, "--batch-frames", "2") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["frames"], summary["frames_with_face"], summary["frames_named"]) == (3, 3, 3)
    assert summary["fps"] > 0
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds[:2] == ["first_seen", "identified"]
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 3


def test_user_errors_exit_with_message(tmp_path, capsys):
    assert main(["eval", "lfw", "--data", str(tmp_path)]) == 2
    assert "no LFW found" in capsys.readouterr().err
    assert main(["eval", "lfw", "--data", str(tmp_path), "--detector", "retinaface"]) == 2
    assert "belong to --protocol pipeline" in capsys.readouterr().err
    assert main(["eval", "lfw", "--data", str(tmp_path), "--protocol", "pipeline", "--hallucinator", "none"]) == 2
    assert "no LFW found" in capsys.readouterr().err
    assert _run(tmp_path / "none.mp4", tmp_path / "g.npz") == 2
    assert "no gallery file" in capsys.readouterr().err


def test_bench_runs_a_benchmark_script(tmp_path, capsys):
    out = tmp_path / "k.json"
    assert main(["bench", "kernels", "--quick", "--cases", "topk", "--reps", "1", "--json", str(out)]) == 0
    assert out.is_file() and "cosine_topk" in capsys.readouterr().out


def _gallery_and_clip(tmp_path, capsys, fps=12, frames=3, side=257):
    """A one-person gallery and an odd-sized clip of that person (OpenCV's own MJPEG keeps odd sides)."""
    face = astronaut_bgr()
    cv2.imwrite(str(tmp_path / "eileen.jpg"), face)
    gallery = tmp_path / "g.npz"
    assert (
        main(
            [
                "enroll",
                str(tmp_path / "eileen.jpg"),
                "--name",
                "eileen",
                "--gallery",
                str(gallery),
                "--hallucinator",
                "bicubic",
            ]
        )
        == 0
    )
    assert "1 person enrolled; gallery " in capsys.readouterr().out  # was "1 people", "1 identities"
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (side, side))
    for i in range(frames):
        writer.write(cv2.resize(np.roll(face, 5 * i, axis=1), (side, side)))
    writer.release()
    return gallery, video


def test_run_output_fps_size_progress_closing_events_and_identity_summary(tmp_path, capsys):
    gallery, video = _gallery_and_clip(tmp_path, capsys)
    out, events = tmp_path / "out.mp4", tmp_path / "events.jsonl"
    assert _run(video, gallery, "--out", out, "--events", events, "--batch-frames", "2") == 0
    captured = capsys.readouterr()
    assert "3/3" in captured.err  # the progress bar knows the file's length (a total, hence an ETA)
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["identities"] == {"eileen": {"frames": 3, "frames_from_track": 0, "ranges": [[0, 2]]}}
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[-2]["event"] == "lost" and lines[-2]["reason"] == "end_of_stream"  # the open track is closed
    assert lines[-1] == {"event": "summary", "frames": 3, "identities": summary["identities"]}
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12)  # was always 25
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (514, 514)  # 257 x2, even


def test_run_switches_for_fusion_and_tracking(tmp_path, capsys):
    gallery, video = _gallery_and_clip(tmp_path, capsys, frames=2)
    for switch in ("--no-tracking", "--no-fusion"):
        events = tmp_path / f"{switch}.jsonl"
        assert _run(video, gallery, "--events", events, switch) == 0
        kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
        assert ("first_seen" in kinds) == (switch == "--no-fusion")
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["frames_named"] == 2


def test_every_run_option_has_help():
    from fhsdk.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("run", "enroll", "export"):
        missing = [a.option_strings or a.dest for a in commands[name]._actions if not a.help and a.dest != "help"]
        assert missing == [], f"fhsdk {name}: options without help: {missing}"


def test_bench_writes_into_its_out_dir_not_the_current_folder(tmp_path, monkeypatch, capsys):
    """It wrote benchmarks/results/ under whatever folder it was run from."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert (
        main(["bench", "--out-dir", str(tmp_path / "bench"), "kernels", "--quick", "--cases", "topk", "--reps", "1"])
        == 0
    )
    assert (tmp_path / "bench" / "bench_kernels.json").is_file()
    assert list(cwd.iterdir()) == []


def test_unwritable_outputs_are_reported_and_no_enrolment_is_lost(tmp_path, capsys):
    """Issue 15, 3.4: an unwritable gallery path lost all enrolment work with a traceback; an unwritable
    --events folder and --max-frames -1 ended in raw Python errors."""
    import os
    from pathlib import Path

    from fhsdk import OutputError
    from fhsdk.cli.enroll import _save_or_rescue
    from fhsdk.gallery import Gallery

    unwritable = Path("/sys") if os.geteuid() == 0 else tmp_path / "read-only"  # root ignores file modes
    if unwritable != Path("/sys"):
        unwritable.mkdir()
        unwritable.chmod(0o555)
    people = tmp_path / "people"
    people.mkdir()
    cv2.imwrite(str(people / "eileen.jpg"), astronaut_bgr())
    # checked before anyone is enrolled, not after
    assert main(["enroll", str(people), "--gallery", str(unwritable / "g.npz"), "--hallucinator", "bicubic"]) == 2
    assert "cannot write the gallery to" in capsys.readouterr().err
    gallery = tmp_path / "g.npz"
    assert main(["enroll", str(people), "--gallery", str(gallery), "--hallucinator", "bicubic"]) == 0
    # a path that fails only at the end: the gallery is saved elsewhere and the error says where
    enrolled = Gallery.load(gallery)
    with pytest.raises(OutputError, match="saved to (.*) instead") as error:
        _save_or_rescue(enrolled, unwritable / "g.npz", None)
    rescue = Path(str(error.value).split("saved to ")[1].split(" instead")[0])
    rescued = Gallery.load(rescue)
    assert rescued.names == enrolled.names and np.array_equal(rescued.embeddings, enrolled.embeddings)
    for leftover in rescue.parent.iterdir():
        leftover.unlink()
    rescue.parent.rmdir()
    capsys.readouterr()
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    writer.write(cv2.resize(astronaut_bgr(), (256, 256)))
    writer.release()
    assert _run(video, gallery, "--events", unwritable / "e.jsonl") == 2
    assert "cannot write events to" in capsys.readouterr().err
    for bad in (["--max-frames", "-1"], ["--batch-frames", "0"]):
        with pytest.raises(SystemExit):
            main(["run", str(video), "--gallery", str(gallery), *bad])
        assert "is not an integer >= 1" in capsys.readouterr().err
