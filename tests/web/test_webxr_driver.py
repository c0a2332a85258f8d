"""The webxr driver against a real WebSocket client sending WebXR frames: samples in our
conventions, the conformance check, stale input -> no samples, the controller fallback."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support.ports import free_port_base
from xr_frames import Streamer, frame, hand_joints, open_socket

from drivers.network.conventions import AXES
from drivers.samples import ButtonEvent, HandSample, PoseSample
from drivers.testing import check_driver
from drivers.webxr import WebXRConfig, WebXRDriver
from teleop.errors import ConfigError, DeviceTimeoutError


def xr_socket(drv):
    return open_socket(drv.server.port, drv.server.token, drv.server.cert.cert_path)


def samples_of(drv, kind, side, n=1, timeout_s=3.0):
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < n:
        try:
            s = drv.get_sample(max(0.01, deadline - time.monotonic()))
        except DeviceTimeoutError:
            raise AssertionError(f"{got}, {drv.health()}, {drv.server.stats()}") from None
        if isinstance(s, kind) and getattr(s, "side", None) == side:
            got.append(s)
    return got


def test_frames_become_hand_and_wrist_samples_in_our_conventions(driver):
    with xr_socket(driver) as ws:
        ws.send(frame(0, pinch=False))
        ws.send(frame(1, pinch=True))
        got = [driver.get_sample(3.0) for _ in range(8)]  # per frame: each side's hand, then its wrist
    open_hand, pinched = [s for s in got if isinstance(s, HandSample) and s.side == "right"]
    wrist = next(s for s in got if isinstance(s, PoseSample) and s.side == "left")
    assert open_hand.keypoints.shape == (21, 3) and np.allclose(open_hand.keypoints[0], 0)
    assert open_hand.channels[0] > 0.03 and pinched.channels[0] < 0.01  # thumb tip - index tip [m]
    assert np.isclose(np.linalg.norm(open_hand.keypoints[4] - open_hand.keypoints[8]), open_hand.channels[0])
    # the left wrist sits where the page put it, in our Z-up axes (y up in WebXR)
    wrist_yup = hand_joints("left")[0]
    assert np.allclose(wrist.position_m, AXES["yup"] @ wrist_yup, atol=1e-4)
    assert wrist.position_m[2] == pytest.approx(1.0, abs=1e-3) and np.isclose(np.linalg.norm(wrist.quat_wxyz), 1)


def test_conformance(tmp_path):
    port = free_port_base(1)
    holder = {}

    def make():
        holder["drv"] = WebXRDriver(WebXRConfig(host="127.0.0.1", port=port, config_dir=tmp_path))
        return holder["drv"]

    def server():
        drv = holder.get("drv")
        return drv.server if drv is not None else None

    with Streamer(port, lambda: server() and server().token, lambda: server() and server().cert.cert_path):
        samples = check_driver(make, kinds=("hand", "pose"))
    assert any(isinstance(s, HandSample) for s in samples)


def test_no_samples_once_the_socket_drops(driver):
    with xr_socket(driver) as ws:
        for k in range(5):
            ws.send(frame(k))
        samples_of(driver, HandSample, "right")
    time.sleep(0.15)
    with pytest.raises(DeviceTimeoutError):
        driver.read_latest(max_age_s=0.1, kind="hand", side="right")
    assert driver.health().errors["page_gone"] == 1


def test_a_hidden_page_sends_nothing_that_drives(driver):
    with xr_socket(driver) as ws:
        ws.send('{"type": "visibility", "state": "hidden"}')
        for k in range(20):
            ws.send(frame(k))
        time.sleep(0.2)
        with pytest.raises(DeviceTimeoutError):
            driver.read_latest(kind="hand", side="right")
        assert driver.health().errors["hidden_frame"] == 20
        ws.send('{"type": "visibility", "state": "visible"}')
        ws.send(frame(21))
        samples_of(driver, HandSample, "right")


def test_the_controller_fallback_and_its_buttons_released_when_the_page_goes(driver):
    ctl = {"right": {"grip": [0.2, 1.1, -0.3, 0, 0, 0, 1], "trigger": 1.0, "squeeze": 0.2, "buttons": ["trigger", "a"]}}
    with xr_socket(driver) as ws:
        ws.send(frame(0, sides=(), controllers=ctl))
        (hand,) = samples_of(driver, HandSample, "right", timeout_s=20)  # the first builds the hand model
        (pose,) = samples_of(driver, PoseSample, "right")
        assert hand.keypoints.shape == (21, 3) and hand.buttons == {"trigger", "a"}
        assert np.allclose(pose.position_m, [0.3, -0.2, 1.1])  # WebXR -z forward, x right -> ours x fwd, y left
    deadline = time.monotonic() + 3
    events = []
    while time.monotonic() < deadline and len([e for e in events if not e.pressed]) < 2:
        events += driver.drain_events()
        time.sleep(0.02)
    assert {(e.button, e.pressed) for e in events} == {("right_trigger", True), ("right_a", True),
                                                       ("right_trigger", False), ("right_a", False)}
    assert all(isinstance(e, ButtonEvent) for e in events)


@pytest.mark.parametrize("kw, match", [({"port": 70000}, "port"), ({"stale_timeout_s": 0.0}, "stale"),
                                       ({"hand_length_m": 2.0}, "hand_length")])
def test_config_is_checked(kw, match):
    with pytest.raises(ConfigError, match=match):
        WebXRConfig(**kw)
