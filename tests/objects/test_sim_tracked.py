"""Tracked object poses through the real process boundaries: ``teleop run sim_objects`` (the sim
server tracking its own head camera, a session, the recorder) records an episode whose object
poses match MuJoCo's; and a camera process that dies turns the poses held while the server goes
on publishing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.ports import free_port_base

from recorder.reader import load_episode
from robots.objects.accuracy import rotation_error_deg
from robots.objects.tracker import FRESH, HELD
from teleop.bus import Bus, RobotEndpoints, RobotState
from teleop.bus.endpoints import TOPIC_STATE

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "teleop.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_a_session_with_tracked_object_poses_records_what_the_simulator_had(tmp_path):
    out = _run(["run", "sim_objects", "--seconds", "5", "--port-base", str(free_port_base()), "--no-keys",
                "--quiet"], tmp_path, 180)
    assert out.returncode == 0, out.stderr[-3000:]
    [folder] = [p for p in (tmp_path / "data" / "objects").iterdir() if p.is_dir()]
    ep = load_episode(folder)
    states = ep.stream("robot/state").messages
    assert len(states) > 100
    status = np.stack([s.body_status for s in states])
    pose = np.stack([s.body_pose for s in states])
    truth = np.stack([s.body_pose_truth for s in states])
    pose_ns = np.stack([s.body_pose_ns for s in states])
    fresh = status == FRESH
    assert fresh.mean() > 0.8, f"fresh on {fresh.mean():.0%} of rows"
    assert np.all(pose_ns[fresh] > 0)
    err_mm = np.linalg.norm(pose[..., :3] - truth[..., :3], axis=-1)[fresh] * 1e3
    err_deg = [rotation_error_deg(p, t) for p, t in zip(pose[fresh][:, 3:], truth[fresh][:, 3:], strict=True)]
    assert np.percentile(err_mm, 95) <= 5.0, np.percentile(err_mm, [50, 95, 100])
    assert np.percentile(err_deg, 95) <= 2.0, np.percentile(err_deg, [50, 95, 100])
    # the episode's own tools read it unchanged; the export says which poses were fresh
    shown = _run(["episodes", "inspect", str(folder)], tmp_path, 60)
    assert shown.returncode == 0 and "bottle" in shown.stdout, shown.stderr[-2000:]
    out = _run(["export", str(folder.parent), "--format", "lerobot", "--out", str(tmp_path / "lerobot")], tmp_path, 120)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads((tmp_path / "lerobot" / "meta" / "info.json").read_text())
    assert info["features"]["observation.object_pose_fresh"]["names"] == ["cube", "bottle", "mug"]
    assert info["features"]["observation.object_poses"]["shape"] == [21]


def _render_process(pid: int) -> int:
    """The sim's camera process (a multiprocessing child; not its resource tracker)."""
    kids = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    renderers = [k for k in kids if b"resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes()]
    assert len(renderers) == 1, renderers
    return renderers[0]


def test_the_camera_dying_turns_tracked_poses_held_and_states_keep_coming(tmp_path):
    base = free_port_base()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "teleop.cli", "sim", "--port-base", str(base), "--cameras",
                             "head_cam", "--camera-size", "640x480", "--object-poses", "tracked"], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    bus = Bus("test")
    try:
        sub = bus.subscriber(RobotEndpoints.on(port_base=base).state, [TOPIC_STATE], accept=(RobotState,))

        def newest(timeout: float = 30.0) -> RobotState:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if sub.wait(0.5) and (got := sub.latest()) is not None:
                    return got.msg
            raise AssertionError(f"no robot_state within {timeout} s; {proc.stderr.read() if proc.poll() else ''}")

        deadline = time.monotonic() + 60
        while not np.all(newest().body_status == FRESH):
            assert time.monotonic() < deadline, "the objects were never all measured"
        os.kill(_render_process(proc.pid), signal.SIGKILL)
        time.sleep(1.0)  # four times max_age_s
        st = newest()
        assert proc.poll() is None, "the server died with its camera"
        assert list(st.body_status) == [HELD] * len(st.body_status), (time.monotonic_ns() - st.body_pose_ns) / 1e6
        assert np.all(time.monotonic_ns() - st.body_pose_ns > 0.25e9)  # and they say how old they are
    finally:
        bus.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
