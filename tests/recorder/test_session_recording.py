"""A real session (sim server, synthetic devices, the recorder in its own process) records an
episode with every stream and camera video; that episode replays onto a fresh sim robot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recorder.episode import list_episodes
from recorder.reader import load_episode
from recorder.replay import replay_episode
from recorder.video import read_video
from robots.mujoco_sim.process import connect_when_ready, start_sim_process
from teleop.bus.endpoints import RobotEndpoints, session_endpoints
from teleop.session.config import load_session
from teleop.session.session import Session

SESSION = """
[session]
rate_hz = 500

[robot]
kind = "sim"
port_base = {port}
sim_args = ["--cameras", "head_cam", "--camera-hz", "10", "--camera-size", "160x120"]

[device.left]
driver = "synthetic"
options = {{ side = "left", rate_hz = 200 }}

[device.right]
driver = "synthetic"
options = {{ side = "right", rate_hz = 200 }}

[input.left]
hand = "left"
wrist = "left"

[input.right]
hand = "right"
wrist = "right"

[controls]
engage = ["auto"]

[recorder]
enabled = true
dataset = "{dataset}"
task = "wave"

[haptics]
enabled = false
"""


@pytest.mark.slow
def test_session_records_an_episode_that_replays_onto_the_sim(tmp_path):
    dataset = tmp_path / "ds"
    cfg_path = tmp_path / "rec.toml"
    cfg_path.write_text(SESSION.format(port=7980, dataset=dataset))
    summary = Session(load_session(str(cfg_path)), status="quiet", keys=False).run(seconds=4.0)
    assert summary.extra["episodes"] == [str(dataset / "episode_000000")], summary.extra
    [e] = list_episodes(dataset)
    assert (e.status, e.task) == ("complete", "wave")
    ep = load_episode(e.path)
    m = ep.meta
    assert m["session"] == "rec" and m["robot"] == "dexhumanoid" and len(m["joint_names"]) == 46
    assert m["loop"]["configured_hz"] == 500 and "commands_logged_hz" in m["loop"] and "loop_hz" in m["loop"]
    for topic in ("robot/state", "session/command", "session/hand/left", "session/pose/right", "recorder/video/head_cam"):
        assert len(ep.stream(topic)) > 0, topic
    assert ep.stream("session/command").gaps == 0 and ep.stream("robot/state").gaps == 0
    cmds = ep.stream("session/command")
    assert {"engaged"} <= {c.state for c in cmds.messages}
    assert len(ep.stream("session/hand/left").array("keypoints")[0]) == 21
    # the video holds exactly the frames the log refers to, in order
    refs = ep.video_refs("head_cam").array("video_index")
    frames = [i for i, _ in read_video(Path(e.path) / "video/head_cam.mp4")]
    assert len(frames) == m["videos"]["head_cam"]["frames"] == int(refs.max()) + 1 and np.all(np.diff(refs) == 1)
    # inspect and verify see a whole episode
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "episodes", "inspect", e.path, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and '"bus_gaps": 0' in out.stdout, out.stderr

    # the episode exports to LeRobot v3: parquet rows open with pyarrow, the video has one frame per row
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "export", str(dataset), "--format", "lerobot",
                          "--out", str(tmp_path / "lerobot"), "--fps", "10", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "lerobot/data/chunk-000/file-000.parquet")
    assert {"observation.state", "action", "intervention", "timestamp"} <= set(table.column_names)
    mp4 = tmp_path / "lerobot/videos/observation.images.head_cam/chunk-000/file-000.mp4"
    assert sum(1 for _ in read_video(mp4)) == table.num_rows > 20

    # replay onto a fresh sim: the robot follows the logged commands
    port = 7990
    log = tmp_path / "sim.log"
    proc = start_sim_process(port, log, ["--cameras", "none"])
    try:
        connect_when_ready(RobotEndpoints.on(port_base=port).rpc, proc, log).disconnect()
        res = replay_episode(e.path, publish=session_endpoints(port_base=port)[0],
                             robot_rpc=RobotEndpoints.on(port_base=port).rpc)
    finally:
        proc.terminate()
        proc.wait(20)
    assert res.commands == len(cmds) and res.published > len(cmds)
    assert res.tracking_rms_rad < 0.1, res
