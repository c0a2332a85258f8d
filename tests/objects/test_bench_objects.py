"""``teleop bench objects --json`` prints the keys the checks read, from a short run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_objects_prints_speed_and_accuracy_beside_their_references():
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "bench", "objects", "--seconds", "1", "--json"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    j = json.loads(out.stdout)
    for key in ("position_error_mm", "rotation_error_deg"):
        assert {"p50", "p95"} <= set(j[key]) and j[key]["n"] > 0
        assert {"p50", "p95"} <= set(j["reference"][key])
    assert 0.0 <= j["detection_rate"] <= 1.0
    for size in ("640x480", "1280x720"):
        assert set(j["fps_per_core"][size]) == {"1", "3", "10"}
        assert all(v > 0 for v in j["fps_per_core"][size].values())
        assert all(v > 0 for v in j["reference_fps_per_core"][size].values())
