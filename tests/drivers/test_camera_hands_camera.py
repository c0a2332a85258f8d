"""The camera_hands camera path when the camera goes away: OpenCV's capture faked at the V4L2
boundary (it serves frames of the real hand video, then stops, as an unplugged UVC camera does),
the tracker's process body run on a real pipe; and the tracker process itself killed under a
running driver, which counts the loss and starts a new one. Nothing hangs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import cv2
import pytest
from support.hands import HAND_VIDEO, require_hand_models

from teleop.errors import DeviceTimeoutError

pytestmark = pytest.mark.skipif(not HAND_VIDEO.is_file(), reason=f"the real hand video is not at {HAND_VIDEO}")
FRAMES = 6


@pytest.fixture(scope="module", autouse=True)
def _models():
    require_hand_models()


def _unplugging_capture(frames: list):
    class Capture:
        """cv2.VideoCapture on a V4L2 node: ``frames`` then nothing (the device is gone)."""

        def __init__(self, path, api):
            assert api == cv2.CAP_V4L2
            self.left = list(frames)

        def isOpened(self):
            return True

        def set(self, prop, value):
            return True

        def get(self, prop):
            return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

        def read(self):
            return (True, self.left.pop(0)) if self.left else (False, None)

        def release(self):
            pass

    return Capture


class _Cv2:
    def __init__(self, capture_class):
        self.VideoCapture = capture_class

    def __getattr__(self, name):
        return getattr(cv2, name)


def test_a_camera_unplugged_mid_stream_is_said_and_the_tracker_stops(tmp_path, monkeypatch):
    from drivers.camera_hands import worker
    from drivers.camera_hands.config import CameraHandsConfig
    from teleop.vision import sources

    cap = cv2.VideoCapture(str(HAND_VIDEO))
    frames = [cap.read()[1] for _ in range(FRAMES)]
    cap.release()
    monkeypatch.setattr(sources, "load_cv2", lambda: _Cv2(_unplugging_capture(frames)))
    dev = tmp_path / "video4"
    dev.touch()
    parent, child = multiprocessing.Pipe(duplex=False)
    stop = threading.Event()
    body = threading.Thread(target=worker.run, args=(CameraHandsConfig(device=str(dev)), child, stop), daemon=True)
    body.start()
    msgs = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not msgs or msgs[-1][0] == "ready" or msgs[-1][0] == "frame"):
        if parent.poll(0.5):
            msgs.append(parent.recv())
    body.join(10)
    assert not body.is_alive()
    assert msgs[0] == ("ready", {"source": f"camera {dev}", "fps": 30.0})
    tracked = [m for m in msgs if m[0] == "frame"]
    assert len(tracked) == FRAMES and all(m[3] and m[3][0][0] == "right" for m in tracked)
    assert msgs[-1] == ("error", f"camera {dev} stopped delivering frames (unplugged?)")


def _next_sample(drv, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return drv.get_sample(0.5)
        except DeviceTimeoutError:
            continue
    raise AssertionError(f"no sample in {seconds} s")


def test_a_killed_tracker_process_is_counted_and_a_new_one_takes_over():
    from drivers.registry import create_driver

    drv = create_driver("camera_hands", {"video": str(HAND_VIDEO), "realtime": "true", "loop": "true"})
    with drv:
        _next_sample(drv, 30)
        old = drv._proc.pid
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and drv.health().errors.get("reconnect", 0) < 1:
            time.sleep(0.05)
        health = drv.health()
        assert health.errors.get("device_lost") == 1 and health.errors.get("reconnect") == 1
        assert "the tracker process ended (exit code -9)" in (health.last_error or "")
        assert drv._proc.pid != old
        while drv.get_sample(5.0).capture_ns < time.monotonic_ns() - 1_000_000_000:
            pass  # what was queued before the loss; then fresh samples from the new tracker
