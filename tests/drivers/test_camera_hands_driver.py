"""The camera_hands driver on the real hand video, through its own tracker process: right-hand
samples that keep the hand contract, with a wrist pose in front of the camera; no left hand;
bad inputs (a missing file, a file that is no video, a video without hands) give a clear error
or no samples, never a crash."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support.hands import HAND_VIDEO, require_hand_models

from drivers.samples import HandSample, PoseSample, hand_sample_problem
from teleop.errors import DeviceError, DeviceTimeoutError

VIDEO = HAND_VIDEO
pytestmark = pytest.mark.skipif(not VIDEO.is_file(), reason=f"the real hand video is not at {VIDEO} (../shared/data)")


def _driver(**options):
    from drivers.registry import create_driver

    return create_driver("camera_hands", options)


@pytest.fixture(scope="module", autouse=True)
def _models():
    require_hand_models()


def test_the_real_video_gives_right_hand_samples_with_a_wrist_pose():
    drv = _driver(video=str(VIDEO), realtime=True)
    with drv:
        got: list = []
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            try:
                got.append(drv.get_sample(1.0))
            except DeviceTimeoutError:
                pass
        right = drv.read_latest(1.0, "hand", "right")
        with pytest.raises(DeviceTimeoutError):
            drv.read_latest(1.0, "hand", "left")
    hands = [s for s in got if isinstance(s, HandSample)]
    poses = [s for s in got if isinstance(s, PoseSample)]
    assert len(hands) > 30, len(hands)  # ~3 s at up to 30 fps, after the tracker process started
    assert {s.side for s in hands} == {"right"} and right.side == "right"
    assert all(hand_sample_problem(s, "camera_hands") is None for s in hands)
    kp = np.stack([s.keypoints for s in hands])
    assert np.allclose(kp[:, 0], 0) and np.all(kp[:, 9, 0] > 0.05) and np.allclose(kp[:, 9, 1:], 0, atol=1e-9)
    assert len(poses) >= 0.9 * len(hands)
    pos = np.stack([p.position_m for p in poses])
    assert np.all(np.isfinite(pos)) and np.all(pos[:, 0] > 0.1) and np.all(pos[:, 0] < 3.0)  # in front of the lens
    conf = np.stack([s.channels for s in hands])
    assert conf.shape[1] == 23 and np.all((conf >= 0) & (conf <= 1))


def test_bad_inputs_say_what_is_wrong(tmp_path):
    with pytest.raises(DeviceError, match="no such file"):
        _driver(video=str(tmp_path / "missing.mp4")).connect()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    with pytest.raises(DeviceError, match="not a video"):
        _driver(video=str(text)).connect()


def test_a_video_without_hands_gives_no_samples(tmp_path):
    import cv2

    path = tmp_path / "empty.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(30):
        out.write(rng.integers(0, 40, (240, 320, 3), dtype=np.uint8))
    out.release()
    drv = _driver(video=str(path), realtime=False)
    with drv:
        with pytest.raises(DeviceTimeoutError):
            drv.get_sample(2.0)
        deadline = time.monotonic() + 10
        while not drv.eof and time.monotonic() < deadline:
            time.sleep(0.05)
        assert drv.eof and drv.health().connected
