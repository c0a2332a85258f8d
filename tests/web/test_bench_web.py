"""``teleop bench web --json`` on a short run: the keys the checks read, with figures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_web_json_has_the_keys(port_base):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "bench", "web", "--json", "--seconds", "3",
                          "--port-base", str(port_base - 70)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("hand_to_setpoint_ms", "raw_ws_ms", "raw_ws_rtt_ms", "camera_to_page_ms"):
        assert set(result[key]) >= {"p50", "p99"} and all(math.isfinite(result[key][p]) for p in ("p50", "p99")), key
    assert result["camera"]["size"] == [640, 480] and result["note"] and 0 < result["server_cpu_pct"] < 400
    session, link = result["session"], result["link"]  # a whole session; the link alone (no session)
    assert session["frames_arrived"] > 30 and session["commands_traced"] > 0
    assert set(session["stages_ms"]) >= {"retarget", "safety", "wire"}
    assert link["frames_ticked"] > 30 and link["camera_fps"] > 0
    assert math.isfinite(link["hand_to_retarget_ms"]["p50"])
