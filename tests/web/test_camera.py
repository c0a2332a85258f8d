"""The robot's head camera reaches the page: the sim renders ``head_cam``, the web server relays
it as JPEG over the page's WebSocket (a real TLS client here; the browser test is in
test_browser.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from support.sim import running_server
from xr_frames import open_socket

from teleop.errors import ConfigError
from teleop.web.camera import unpack_frame
from teleop.web.server import WebConfig, WebServer


def test_the_head_camera_reaches_a_client_as_jpeg(tmp_path, port_base):
    with running_server(port_base, cameras=("head_cam",), camera_hz=30.0, camera_width=320, camera_height=240) as sim:
        cfg = WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path, camera=sim.config.endpoints.camera)
        with WebServer(cfg) as server, open_socket(server.port, server.token, server.cert.cert_path) as ws:
            got = []
            while len(got) < 5:
                data = ws.recv(timeout=10)
                if isinstance(data, bytes):
                    got.append(unpack_frame(data))
    name, w, h, _, capture_ns, jpeg = got[-1]
    assert (name, w, h) == ("head_cam", 320, 240)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3) and image.std() > 1.0  # a rendered scene, not a blank frame
    assert capture_ns > 0 and len({g[3] for g in got}) == len(got)  # distinct frames


@pytest.mark.parametrize("bad", [{"camera": "7612"}, {"camera": "tcp://x:1", "camera_names": ()},
                                 {"camera_hz": 0.5}, {"jpeg_quality": 5}])
def test_camera_options_are_checked(bad):
    with pytest.raises(ConfigError):
        WebConfig(**bad)


def test_the_header_is_what_the_page_reads():
    from teleop.web.camera import HEADER, pack_frame
    from teleop.web.server import STATIC_DIR

    assert HEADER.size == 22 and "const HEADER_BYTES = 22;" in (STATIC_DIR / "xr.js").read_text()
    assert unpack_frame(pack_frame("head_cam", 640, 480, 7, 123, b"jpeg")) == ("head_cam", 640, 480, 7, 123, b"jpeg")


def test_a_page_that_does_not_read_gets_frames_dropped_not_queued(server):
    import time

    from xr_frames import frame

    with open_socket(server.port, server.token, server.cert.cert_path, max_size=2**22, close_timeout=0.5) as ws:
        ws.send(frame(0))  # the socket drives
        deadline = time.monotonic() + 5
        while server.stats().get("frames", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        big = b"x" * 2_000_000  # far past what the socket buffers hold while nobody reads
        for _ in range(30):
            server.send_camera(big)
            time.sleep(0.01)
        time.sleep(0.2)
        stats = server.stats()
        assert stats.get("camera_dropped", 0) > 0  # never a queue of old frames
        assert stats.get("camera_sent", 0) + stats.get("camera_dropped", 0) <= 30
        ws.send(frame(1))  # and the page's own frames still get through
        deadline = time.monotonic() + 5
        while server.stats().get("frames", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.stats()["frames"] == 2
