from __future__ import annotations

import pytest

from drivers.webxr import WebXRConfig, WebXRDriver
from teleop.web.server import WebConfig, WebServer


@pytest.fixture
def server(tmp_path):
    with WebServer(WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path / "web")) as s:
        yield s


@pytest.fixture
def driver(tmp_path):
    drv = WebXRDriver(WebXRConfig(host="127.0.0.1", port=0, config_dir=tmp_path))
    drv.connect()
    yield drv
    drv.disconnect()
