"""The network input driver (a headset app, a tracker) survives hostile frames: each is counted,
none ends the driver, and a good message after them is a sample."""

from __future__ import annotations

import time

import numpy as np
from support.ports import free_port_base

from drivers.network.config_network import NetworkConfig
from drivers.network.network import NetworkDriver
from retarget.human_hand import HumanHand
from retarget.motions import pose
from teleop.bus import Bus, HandKeypoints
from teleop.bus.codec import encode_raw
from teleop.errors import DeviceTimeoutError


def test_hostile_frames_do_not_end_the_network_driver():
    endpoint = f"tcp://127.0.0.1:{free_port_base(1)}"
    drv = NetworkDriver(NetworkConfig(endpoint=endpoint, side="right"))
    drv.connect()
    try:
        with Bus("tracker") as bus:
            pub = bus.publisher(endpoint, bind=False)
            time.sleep(0.3)
            topic = b"input/right/hand\0"
            head = {"v": 1, "k": "hand_keypoints", "t": "input/right/hand", "s": "x", "q": 0, "tc": 0, "ts": 0}
            for frames in ([topic + encode_raw({**head, b"k": 1})],  # bytes and str keys
                           [topic + encode_raw({**head, "v": np.array([1, 1]), "b": {}})],
                           [topic + encode_raw({**head, "b": {b"side": "right", "side": 1}})],
                           [topic + b"\xc1" * 50], [b"input/right/x", b"two", b"frames"]):
                pub.send_raw(frames)
            kp = HumanHand("right").keypoints(pose("open"))
            deadline = time.monotonic() + 5
            sample = None
            while sample is None and time.monotonic() < deadline:
                pub.publish(HandKeypoints(side="right", keypoints=kp), "input/right/hand")
                try:
                    sample = drv.get_sample(0.2)
                except DeviceTimeoutError:
                    pass
        assert sample is not None and drv.is_connected
        np.testing.assert_allclose(sample.keypoints, kp, atol=1e-9)
        h = drv.health()
        # the two-frame message is counted too (bad_frames): this socket keeps every message
        assert h.connected and h.errors.get("rejected") == 5, h
    finally:
        drv.disconnect()
