"""``teleop objects track`` the way a real setup runs it: a video file of the scene, the camera's
intrinsics and pose from calibration files, poses in the base frame; and what it says when the
calibration is missing or broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from home_scene import H, W, home_scene

from robots.objects.sim_camera import sim_intrinsics
from teleop.vision.extrinsics import CameraPose

REPO = Path(__file__).resolve().parents[2]
OBJECTS = REPO / "robots" / "dexhumanoid" / "objects.toml"


def _teleop(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "teleop.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A 2 s video of the resting scene from the head camera, its calibration files and the truth."""
    where = tmp_path_factory.mktemp("track")
    sc = home_scene()
    frame = sc.image
    video = where / "scene.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (W, H))
    for _ in range(30):
        out.write(frame[:, :, ::-1])
    out.release()
    sim_intrinsics(sc.sim.model, "head_cam", W, H).save(where / "head_cam.toml")
    CameraPose.from_matrix(sc.T_base_camera, source="sim").save(where / "head_cam_pose.toml")
    truth = {n: sc.truth(n)[0] for n in ("cube", "bottle", "mug")}
    return where, video, truth


def test_a_video_with_calibration_files_gives_base_frame_poses(recorded):
    where, video, truth = recorded
    out = _teleop("objects", "track", str(OBJECTS), "--video", str(video), "--intrinsics", "head_cam.toml",
                  "--camera-pose", "head_cam_pose.toml", "--json", cwd=where)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) >= 10  # played in real time: some frames may be skipped, never all
    last = lines[-1]["objects"]
    for name, pos in truth.items():
        assert last[name]["status"] == "fresh", last
        assert np.linalg.norm(np.array(last[name]["pos"]) - pos) < 0.006, (name, last[name]["pos"], pos)
    assert "ended" in out.stderr  # the end of the file is said, not taken for a camera that hangs


def test_missing_or_broken_calibration_is_a_clear_error(recorded):
    where, video, _truth = recorded
    out = _teleop("objects", "track", str(OBJECTS), "--video", str(video), cwd=where)
    assert out.returncode == 2 and "teleop calibrate camera" in out.stderr, out.stderr
    (where / "bad_pose.toml").write_text('parent = "base"\npos = [0, nan, 1]\nquat = [1, 0, 0, 0]\n')
    out = _teleop("objects", "track", str(OBJECTS), "--video", str(video), "--intrinsics", "head_cam.toml",
                  "--camera-pose", "bad_pose.toml", cwd=where)
    assert out.returncode == 2 and "bad_pose.toml" in out.stderr and "pos" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_bridge_feed_holds_when_the_camera_stops_and_recovers_when_it_returns(recorded):
    from support.ports import free_port_base

    from robots.objects.config import load_objects
    from robots.objects.feed import FrameInput, ObjectPoseFeed
    from robots.objects.tracker import FRESH, HELD
    from teleop.bus import Bus, CameraFrame
    from teleop.bus.endpoints import TOPIC_CAMERA
    from teleop.vision.intrinsics import Intrinsics

    where, video, truth = recorded
    cap = cv2.VideoCapture(str(video))
    frame = cap.read()[1][:, :, ::-1].copy()
    cap.release()
    endpoint = f"tcp://127.0.0.1:{free_port_base(1)}"
    bus = Bus("camera")
    pub = bus.publisher(endpoint, bind=True)
    config = load_objects(OBJECTS)
    feed = ObjectPoseFeed(config, FrameInput(bus=endpoint, camera="head_cam"), Intrinsics.load(where / "head_cam.toml"),
                          CameraPose.load(where / "head_cam_pose.toml").matrix())
    pose, pose_ns, status = np.zeros((3, 7)), np.zeros(3, np.int64), np.zeros(3, np.uint8)

    def stream(seconds: float) -> None:
        end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < end:
            msg = CameraFrame(camera="head_cam", frame_index=k, time_s=k / 15, image=frame)
            pub.publish(msg, TOPIC_CAMERA + "head_cam")
            k += 1
            time.sleep(1 / 15)

    try:
        feed.start()
        stream(1.0)
        feed.fill(pose, pose_ns, status)
        assert list(status) == [FRESH] * 3, (status, feed.error)
        assert np.linalg.norm(pose[1, :3] - truth["bottle"]) < 0.006
        time.sleep(1.2)  # the camera stops (REOPEN_S without a frame, then held)
        feed.fill(pose, pose_ns, status)
        assert list(status) == [HELD] * 3 and "no frame" in feed.error
        stream(2.0)  # and comes back (reopened within REOPEN_S)
        feed.fill(pose, pose_ns, status)
        assert list(status) == [FRESH] * 3 and feed.error == ""
    finally:
        feed.stop()
        bus.close()
