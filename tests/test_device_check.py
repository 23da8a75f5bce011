"""The GPU device check's driver, on its fast sections: one JSON, every section timed and recorded
(CI's `.ci/run` runs every section in smoke mode after the tests)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "device_check.py"


def test_device_check_smoke_writes_one_json(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--sections", "env,build", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["smoke"] and list(report["sections"]) == ["env", "build"]
    assert all(entry["status"] == "ok" and entry["seconds"] >= 0 for entry in report["sections"].values())
    assert "torch" in report["sections"]["env"]["result"]
    assert "skipped" in report["sections"]["build"]["result"]
    assert "device_check.json" in run.stdout
