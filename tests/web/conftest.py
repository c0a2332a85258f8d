from __future__ import annotations

import pytest

from teleop.web.server import WebConfig, WebServer


@pytest.fixture
def server(tmp_path):
    with WebServer(WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path / "web")) as s:
        yield s
