"""A device that sees both hands (a camera) gets one tap stream per side, so a recorded episode
and its exports never mix the left and the right hand; a one-sided device keeps its one stream."""

from __future__ import annotations

import time

import numpy as np
from support.ports import free_port_base

from drivers.samples import HandSample, PoseSample
from teleop.bus.sockets import Bus
from teleop.errors import LinkTimeoutError
from teleop.session.tap import SessionTap


def test_both_hands_from_one_device_go_to_one_stream_per_side():
    ep = f"tcp://127.0.0.1:{free_port_base()}"
    tap, bus = SessionTap(ep, 4), Bus("test")
    tap.start()
    sub = bus.subscriber(ep, ("session/hand/", "session/pose/"), mode="lossless")
    try:
        time.sleep(0.3)  # subscription handshake
        kp = np.zeros((21, 3))
        for side in ("left", "right"):
            tap.sample("cam", HandSample(side=side, capture_ns=time.monotonic_ns(), seq=1, keypoints=kp), by_side=True)
            tap.sample("cam", PoseSample(side=side, capture_ns=time.monotonic_ns(), seq=1, position_m=np.zeros(3),
                                         quat_wxyz=np.array([1.0, 0, 0, 0])), by_side=True)
        tap.sample("glove", HandSample(side="right", capture_ns=time.monotonic_ns(), seq=1, keypoints=kp))
        topics = set()
        while True:
            try:
                got = sub.recv(1.0)
            except LinkTimeoutError:
                break
            topics.add(got.header.topic)
            assert got.msg.device in ("cam", "glove")
    finally:
        tap.stop()
        bus.close()
    assert topics == {"session/hand/cam_left", "session/hand/cam_right", "session/pose/cam_left",
                      "session/pose/cam_right", "session/hand/glove"}
